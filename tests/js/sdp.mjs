// SDP shared by the SFU tests.

// A Chrome offer (audio + video): passes the SFU's checks, so the SFU builds a
// connection and answers it (it never connects: nobody answers its checks).
export const OFFER = [
  'v=0', 'o=- 950418995774734248 2 IN IP4 127.0.0.1', 's=-', 't=0 0',
  'a=group:BUNDLE 0 1', 'a=extmap-allow-mixed', 'a=msid-semantic: WMS s',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0', 'a=rtcp:9 IN IP4 0.0.0.0',
  'a=ice-ufrag:Ax8A', 'a=ice-pwd:A3hZdInJDtIaVtXY97dm0psc', 'a=ice-options:trickle',
  'a=fingerprint:sha-256 FC:6C:53:03:79:3F:9F:F3:18:5E:83:2F:9B:91:FB:8F:19:52:16:59:2A:66:4C:36:0D:93:91:E1:E2:66:A1:85',
  'a=setup:actpass', 'a=mid:0', 'a=sendrecv', 'a=msid:s a', 'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2', 'a=rtcp-fb:111 transport-cc', 'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=ssrc:1001 cname:c', 'a=ssrc:1001 msid:s a',
  'm=video 9 UDP/TLS/RTP/SAVPF 96', 'c=IN IP4 0.0.0.0', 'a=rtcp:9 IN IP4 0.0.0.0',
  'a=ice-ufrag:Ax8A', 'a=ice-pwd:A3hZdInJDtIaVtXY97dm0psc', 'a=ice-options:trickle',
  'a=fingerprint:sha-256 FC:6C:53:03:79:3F:9F:F3:18:5E:83:2F:9B:91:FB:8F:19:52:16:59:2A:66:4C:36:0D:93:91:E1:E2:66:A1:85',
  'a=setup:actpass', 'a=mid:1', 'a=sendrecv', 'a=msid:s v', 'a=rtcp-mux', 'a=rtcp-rsize',
  'a=rtpmap:96 VP8/90000', 'a=rtcp-fb:96 nack', 'a=rtcp-fb:96 nack pli',
  'a=ssrc:1002 cname:c', 'a=ssrc:1002 msid:s v', '',
].join('\r\n');
