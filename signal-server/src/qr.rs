//! `GET /api/qr?text=…`: a QR code of a room link, as SVG, so that a phone
//! joins by pointing its camera at the screen. Drawn here rather than in
//! the browser: an encoder in the client would cost its WASM bundle, which
//! is at its budget (docs/benchmarks.md). Stateless and cheap (tens of
//! microseconds for a link); the SVG holds only the code's squares, never
//! the text, and is served with a policy that forbids anything active.

use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The longest text encoded: a room link is well under this.
pub const MAX_TEXT_BYTES: usize = 512;

#[derive(Debug, Deserialize)]
pub struct QrQuery {
    text: Option<String>,
}

pub async fn qr(Query(q): Query<QrQuery>) -> Response {
    let Some(text) = q.text.filter(|t| !t.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            "missing ?text= (the link to encode)",
        )
            .into_response();
    };
    if text.len() > MAX_TEXT_BYTES {
        return (
            StatusCode::BAD_REQUEST,
            format!("?text= is longer than {MAX_TEXT_BYTES} bytes"),
        )
            .into_response();
    }
    match svg(&text) {
        Some(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                // The same text always gives the same picture.
                (header::CACHE_CONTROL, "public, max-age=86400"),
                (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
            ],
            svg,
        )
            .into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            "this text does not fit in a QR code",
        )
            .into_response(),
    }
}

/// The QR code of `text` (error correction M), black on white with its
/// quiet zone, at least 240 px.
pub fn svg(text: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_squares_not_text() {
        let svg = svg("http://127.0.0.1:3000/r/calm-otter-123?mode=sfu").expect("fits");
        assert!(svg.contains("<svg"));
        assert!(
            !svg.contains("calm-otter"),
            "the text is not in the picture"
        );
        assert!(!svg.contains("<script"));
        assert!(svg.len() < 20_000);
    }

    #[test]
    fn too_long_does_not_fit() {
        assert!(svg(&"x".repeat(8000)).is_none());
    }
}
