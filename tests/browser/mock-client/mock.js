// A deliberately small plain-JS stand-in for the web client that follows
// docs/client-contract.md, used ONLY to check the browser test harness itself
// (WEB_DIST=mock-client). It is not the product. Mesh mode only.
'use strict';
(function () {
  const $ = (s) => document.querySelector(s);
  const app = $('#app');
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  };
  const m = location.pathname.match(/^\/r\/([^/]+)/);
  const params = new URLSearchParams(location.search);
  const roomFromUrl = m ? decodeURIComponent(m[1]) : 'room-' + Math.random().toString(36).slice(2, 8);

  let joinClickAt = 0;
  let localStream = null;
  let socket = null;
  let room = null;
  let selfId = null;
  const peers = new Map(); // id -> {name, pc, dc, tile, video, pendingCands, firstFrame, stats}
  let statsTimer = null;
  let pingTimer = null;

  function lobby() {
    app.replaceChildren(el('form', { id: 'lobby' },
      el('input', { id: 'room-input', 'aria-label': 'Room name', value: roomFromUrl }),
      el('input', { id: 'name-input', 'aria-label': 'Your name', value: '' }),
      (() => { const s = el('select', { id: 'mode-select', 'aria-label': 'Mode' }); s.append(el('option', { value: 'mesh', text: 'mesh' })); return s; })(),
      el('input', { id: 'password-input', type: 'password', 'aria-label': 'Password' }),
      el('button', { id: 'join-button', type: 'submit', text: 'Join room' })));
    $('#lobby').addEventListener('submit', (ev) => {
      ev.preventDefault();
      join($('#room-input').value, $('#name-input').value || 'guest', $('#password-input').value);
    });
  }

  function setStatus(kind, text) {
    const s = $('#status');
    if (!kind) { s.removeAttribute('data-kind'); s.textContent = ''; return; }
    s.setAttribute('data-kind', kind); s.textContent = text || kind;
  }
  function setState(st) { $('#room').setAttribute('data-state', st); }

  function roomUi(r) {
    const transport = el('select', { id: 'chat-transport' });
    transport.append(el('option', { value: 'relay', text: 'relay' }), el('option', { value: 'p2p', text: 'p2p' }));
    app.replaceChildren(el('div', { id: 'room', 'data-room': r, 'data-state': 'connecting' },
      el('div', { id: 'status', role: 'status' }),
      el('div', { id: 'self-id' }),
      el('div', { class: 'tiles', id: 'tiles' }, el('video', { id: 'local-video', autoplay: '', playsinline: '' })),
      el('button', { id: 'leave-button', 'aria-label': 'Leave', text: 'Leave' }),
      el('div', { id: 'chat-log' }),
      el('div', { id: 'typing' }),
      el('input', { id: 'chat-input', 'aria-label': 'Message' }),
      el('button', { id: 'chat-send', text: 'Send' }),
      transport,
      el('table', { id: 'rtt-panel' })));
    $('#local-video').muted = true;
    $('#leave-button').addEventListener('click', leave);
    $('#chat-input').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); send(); } });
    $('#chat-input').addEventListener('input', onTyping);
    $('#chat-send').addEventListener('click', send);
  }

  async function join(r, name, password) {
    joinClickAt = performance.now();
    room = r;
    history.replaceState(null, '', `/r/${encodeURIComponent(r)}`);
    roomUi(r);
    setStatus('connecting');
    try {
      localStream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      if (localStream.getTracks().length) $('#local-video').srcObject = localStream;
    } catch (e) {
      console.warn('no media', e); localStream = null; setStatus('no-media');
    }
    const cfg = await fetch('/api/config').then((x) => x.json()).catch(() => ({ iceServers: [] }));
    socket = io({ transports: ['websocket'] });
    socket.on('connect', () => {
      const payload = { room: r, name };
      if (password) payload.password = password;
      socket.emit('join', payload, (ack) => {
        if (!ack.ok) { setStatus(ack.error.code, ack.error.message); setState('error'); return; }
        selfId = ack.self.id;
        $('#self-id').setAttribute('data-peer-id', selfId);
        $('#self-id').textContent = selfId;
        setStatus(null); setState('joined');
        for (const h of ack.history || []) showMsg(h.id, h.from.id, h.from.name, h.text, 'relay', null);
        for (const p of ack.peers) { const peer = addPeer(p.id, p.name, cfg); offer(peer); }
      });
    });
    socket.on('peer-joined', (p) => { if (p.room === room) { addPeer(p.id, p.name, cfg); notice(`${p.name} joined`); } });
    socket.on('peer-left', (p) => { if (p.room === room) removePeer(p.id, true); });
    socket.on('signal', (s) => onSignal(s, cfg));
    socket.on('chat', (c) => {
      showMsg(c.id, c.from.id, c.from.name, c.text, 'relay', null);
      socket.emit('chat-receipt', { room, id: c.id }, () => {});
    });
    socket.on('chat-receipt', (c) => receipt(c.id, c.from));
    socket.on('typing', (t) => setTyping(t.from, t.typing));
    socket.on('peer-ping', (p) => {
      if (!p.pong) socket.emit('peer-ping', { room, to: p.from, seq: p.seq, pong: true }, () => {});
      else { const peer = peers.get(p.from); if (peer && peer.relaySent[p.seq]) setRtt(p.from, 'relay', performance.now() - peer.relaySent[p.seq]); }
    });
    statsTimer = setInterval(stats, 1000);
    pingTimer = setInterval(pings, 1000);
  }

  function addPeer(id, name, cfg) {
    if (peers.has(id)) return peers.get(id);
    const pc = new RTCPeerConnection({ iceServers: cfg.iceServers || [] });
    const dc = pc.createDataChannel('chat', { negotiated: true, id: 0 });
    const video = el('video', { 'data-peer-id': id, autoplay: '', playsinline: '' });
    const tile = el('div', { class: 'tile', 'data-peer-id': id, 'data-connection-state': 'new', 'data-quality': 'unknown' },
      video, el('span', { class: 'tile-name', text: name }));
    $('#tiles').append(tile);
    const row = el('tr', { 'data-peer-id': id }, el('td', { text: name }), el('td', { class: 'rtt-relay', text: '—' }), el('td', { class: 'rtt-p2p', text: '—' }));
    $('#rtt-panel').append(row);
    const peer = { id, name, pc, dc, tile, video, row, pendingCands: [], firstFrame: false, relaySent: {}, dcSent: {}, seq: 0 };
    peers.set(id, peer);
    if (localStream) for (const t of localStream.getTracks()) pc.addTrack(t, localStream);
    pc.onicecandidate = (e) => socket.emit('signal', { room, to: id, data: { type: 'candidate', candidate: e.candidate ? e.candidate.toJSON() : null } }, () => {});
    pc.onconnectionstatechange = () => tile.setAttribute('data-connection-state', pc.connectionState);
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      if (stream.getTracks().length && video.srcObject !== stream) { video.srcObject = stream; video.play().catch(() => {}); }
    };
    dc.onmessage = (e) => onDc(peer, JSON.parse(e.data));
    return peer;
  }

  async function offer(peer) {
    const o = await peer.pc.createOffer();
    await peer.pc.setLocalDescription(o);
    socket.emit('signal', { room, to: peer.id, data: { type: 'offer', sdp: o.sdp } }, () => {});
  }

  async function onSignal(s, cfg) {
    if (s.room !== room) return;
    const peer = peers.get(s.from) || addPeer(s.from, '?', cfg);
    const pc = peer.pc; const d = s.data;
    if (d.type === 'offer') {
      await pc.setRemoteDescription({ type: 'offer', sdp: d.sdp });
      for (const c of peer.pendingCands.splice(0)) await pc.addIceCandidate(c).catch(console.warn);
      const a = await pc.createAnswer();
      await pc.setLocalDescription(a);
      socket.emit('signal', { room, to: s.from, data: { type: 'answer', sdp: a.sdp } }, () => {});
    } else if (d.type === 'answer') {
      await pc.setRemoteDescription({ type: 'answer', sdp: d.sdp });
      for (const c of peer.pendingCands.splice(0)) await pc.addIceCandidate(c).catch(console.warn);
    } else if (d.type === 'candidate') {
      const c = d.candidate || undefined;
      if (!pc.remoteDescription) peer.pendingCands.push(c); else await pc.addIceCandidate(c).catch(console.warn);
    }
  }

  function removePeer(id, announce) {
    const p = peers.get(id); if (!p) return;
    peers.delete(id);
    p.pc.close(); p.tile.remove(); p.row.remove();
    setTyping(id, false);
    if (announce) notice(`${p.name} left`);
  }

  async function stats() {
    for (const p of peers.values()) {
      try {
        const rep = await p.pc.getStats();
        let frames = 0; let audio = 0; let lost = 0; let recv = 0;
        rep.forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video') { frames += s.framesDecoded || 0; lost += s.packetsLost || 0; recv += s.packetsReceived || 0; }
          if (s.type === 'inbound-rtp' && s.kind === 'audio') audio += s.packetsReceived || 0;
        });
        p.tile.setAttribute('data-frames-decoded', String(frames));
        p.tile.setAttribute('data-audio-packets', String(audio));
        p.tile.setAttribute('data-quality', recv ? (lost / (recv + lost) < 0.02 ? 'good' : 'fair') : 'unknown');
        if (frames > 0 && !p.firstFrame) { p.firstFrame = true; p.tile.setAttribute('data-first-frame-ms', String(Math.round(performance.now() - joinClickAt))); }
      } catch (e) { /* closed */ }
    }
  }

  function pings() {
    for (const p of peers.values()) {
      const seq = ++p.seq;
      p.relaySent[seq] = performance.now();
      socket.emit('peer-ping', { room, to: p.id, seq }, () => {});
      if (p.dc.readyState === 'open') { p.dcSent[seq] = performance.now(); p.dc.send(JSON.stringify({ t: 'ping', seq })); }
    }
  }

  function setRtt(id, kind, ms) {
    const p = peers.get(id); if (!p) return;
    const c = p.row.querySelector(kind === 'relay' ? '.rtt-relay' : '.rtt-p2p');
    c.setAttribute('data-ms', ms.toFixed(3)); c.textContent = `${ms.toFixed(1)} ms`;
  }

  function onDc(peer, msg) {
    if (msg.t === 'ping') peer.dc.send(JSON.stringify({ t: 'pong', seq: msg.seq }));
    else if (msg.t === 'pong') { if (peer.dcSent[msg.seq]) setRtt(peer.id, 'p2p', performance.now() - peer.dcSent[msg.seq]); }
    else if (msg.t === 'chat') { showMsg(msg.id, peer.id, peer.name, msg.text, 'p2p', null); peer.dc.send(JSON.stringify({ t: 'rcpt', id: msg.id })); }
    else if (msg.t === 'rcpt') receipt(msg.id, peer.id);
  }

  const mine = new Map(); // msg id -> {node, waiting:Set}
  function receipt(id, from) {
    const m = mine.get(id); if (!m) return;
    m.waiting.delete(from);
    if (m.waiting.size === 0) m.node.querySelector('.msg-ticks').setAttribute('data-ticks', '2');
  }

  function showMsg(id, fromId, fromName, text, via, ticks) {
    if (id && document.querySelector(`.msg[data-msg-id="${id}"]`)) return null;
    const node = el('div', { class: 'msg', 'data-from': fromId, 'data-via': via },
      el('span', { class: 'msg-author', text: fromName }), el('span', { class: 'msg-text', text }),
      el('span', { class: 'msg-time', text: new Date().toLocaleTimeString() }));
    if (id) node.setAttribute('data-msg-id', id);
    if (ticks !== null) node.append(el('span', { class: 'msg-ticks', 'data-ticks': ticks }));
    $('#chat-log').append(node);
    return node;
  }

  function notice(t) { $('#chat-log').append(el('div', { class: 'notice', text: t })); }

  let typingSent = false; let typingTimer = null;
  function onTyping() {
    if (!typingSent) { typingSent = true; socket.emit('typing', { room, typing: true }, () => {}); }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 2500);
  }
  function stopTyping() { clearTimeout(typingTimer); if (typingSent) { typingSent = false; socket.emit('typing', { room, typing: false }, () => {}); } }
  const typers = new Map();
  function setTyping(id, on) {
    clearTimeout(typers.get(id)); typers.delete(id);
    if (on) typers.set(id, setTimeout(() => setTyping(id, false), 5000));
    const names = [...typers.keys()].map((k) => peers.get(k)?.name || '?');
    $('#typing').textContent = names.length ? `${names.join(', ')} is typing…` : '';
  }

  function send() {
    const text = $('#chat-input').value;
    if (!text) return;
    $('#chat-input').value = '';
    stopTyping();
    const via = $('#chat-transport').value;
    const waiting = new Set(peers.keys());
    if (via === 'relay') {
      const node = showMsg(null, 'self', 'me', text, 'relay', '0');
      socket.emit('chat', { room, text }, (ack) => {
        if (!ack.ok) return;
        node.setAttribute('data-msg-id', ack.id);
        node.querySelector('.msg-ticks').setAttribute('data-ticks', '1');
        mine.set(ack.id, { node, waiting });
      });
    } else {
      const id = crypto.randomUUID();
      const node = showMsg(id, 'self', 'me', text, 'p2p', '0');
      mine.set(id, { node, waiting });
      for (const p of peers.values()) if (p.dc.readyState === 'open') p.dc.send(JSON.stringify({ t: 'chat', id, text }));
      node.querySelector('.msg-ticks').setAttribute('data-ticks', '1');
    }
  }

  function leave() {
    socket.emit('leave', { room }, () => {});
    for (const id of [...peers.keys()]) removePeer(id, false);
    clearInterval(statsTimer); clearInterval(pingTimer);
    setState('left');
  }

  const name = params.get('name');
  if (m && name) join(roomFromUrl, name, ''); else lobby();
})();
