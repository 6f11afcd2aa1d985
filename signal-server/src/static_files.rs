//! The built web client (`STATIC_DIR`), served by `tower-http`'s `ServeDir`
//! with what it does not do by itself:
//!
//! - **only the folder's own files**: no path segment starting with `.`
//!   (dotfiles such as `.env` or `.git/`), no empty segment (for `//x`,
//!   where `x` is a folder, `ServeDir` would redirect to `//x/`, which a
//!   browser reads as a link to the host `x`), and nothing a symlink
//!   resolves to outside the folder;
//! - **caching**: Trunk's content-hashed assets are `immutable` for a year;
//!   everything else (`index.html`, client routes, unhashed files such as
//!   `socket.io.min.js`) is `no-cache`, revalidated on each use, so a new
//!   build is picked up at once;
//! - a **Content-Security-Policy** on every page;
//! - **client routes** (`/r/<room>`) get `index.html`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};
use tower_http::services::ServeDir;

/// `Cache-Control` of a content-hashed asset: its name changes with its content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else: revalidate (cheap: `Last-Modified`).
const REVALIDATE: &str = "no-cache";

/// Serves the folder `dir`.
pub fn service(dir: PathBuf) -> Router {
    let files = ServeDir::new(&dir).fallback(get(client_route).with_state(dir.clone()));
    Router::new()
        .fallback_service(files)
        .layer(middleware::from_fn(with_content_security_policy))
        .layer(middleware::from_fn(with_cache_control))
        // Outermost: runs first.
        .layer(middleware::from_fn_with_state(Arc::new(dir), only_inside))
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

/// Lets through only requests for files inside the folder (see the module).
async fn only_inside(State(dir): State<Arc<PathBuf>>, req: Request, next: Next) -> Response {
    if let Err(why) = check_path(&dir, req.uri().path()).await {
        tracing::debug!(path = req.uri().path(), "static file refused: {why}");
        return not_found();
    }
    let res = next.run(req).await;
    // `ServeDir` redirects a folder to its path plus `/`: never to another host.
    let location = res
        .headers()
        .get(header::LOCATION)
        .map(HeaderValue::as_bytes);
    if let Some([b'/', b'/' | b'\\', ..]) = location {
        return not_found();
    }
    res
}

/// Why a request path is not served, if it is not.
async fn check_path(dir: &Path, path: &str) -> Result<(), &'static str> {
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| "not UTF-8")?;
    let rest = decoded.strip_prefix('/').unwrap_or(&decoded);
    let mut file = dir.to_path_buf();
    let segments: Vec<&str> = rest.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        if segment.is_empty() {
            // Only the last one may be empty: `/`, `/folder/`.
            if i + 1 == segments.len() {
                break;
            }
            return Err("empty path segment");
        }
        if segment.starts_with('.') {
            return Err("hidden file or parent folder");
        }
        if segment.contains(['\\', '\0']) {
            return Err("backslash or NUL in the path");
        }
        file.push(segment);
    }
    if !inside(dir, &file).await {
        return Err("resolves outside the folder");
    }
    // A folder is served as its `index.html`.
    if tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_dir())
        && !inside(dir, &file.join("index.html")).await
    {
        return Err("index.html resolves outside the folder");
    }
    Ok(())
}

/// Whether `file` (under `dir`) resolves, symlinks followed, to a place
/// inside `dir`. A file that does not exist is inside: the answer is 404.
async fn inside(dir: &Path, file: &Path) -> bool {
    let Ok(real) = tokio::fs::canonicalize(file).await else {
        return true;
    };
    match tokio::fs::canonicalize(dir).await {
        Ok(root) => real.starts_with(root),
        Err(_) => false,
    }
}

/// Whether the last segment of `path` is a Trunk content-hashed name:
/// `<name>-<hash>.<ext>` or `<name>-<hash>_bg.wasm`, the hash a 64-bit
/// seahash in lowercase hex (`{:x}`: 16 digits, fewer when it begins with
/// zeros; 12 or more covers all but one build in 65 536).
fn is_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    name.match_indices('-').any(|(i, _)| {
        let after = &name.as_bytes()[i + 1..];
        let hex = after
            .iter()
            .take_while(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .count();
        (12..=16).contains(&hex) && matches!(after.get(hex), Some(b'.' | b'_'))
    })
}

async fn with_cache_control(req: Request, next: Next) -> Response {
    let hashed = is_hashed(req.uri().path());
    let mut res = next.run(req).await;
    let found = res.status().is_success() || res.status() == StatusCode::NOT_MODIFIED;
    let policy = if hashed && found {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    res.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static(policy));
    res
}

/// Largest HTML page whose inline scripts are hashed for the CSP.
const MAX_PAGE_BYTES: usize = 1 << 20;

/// Every HTML page of the client gets a Content-Security-Policy that allows
/// only same-origin scripts plus its own inline scripts, by hash: Trunk's
/// `index.html` starts the WASM with one inline module script whose text
/// changes with every build, so the hash is taken from the page as served.
async fn with_content_security_policy(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !html {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PAGE_BYTES).await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the page could not be read",
        )
            .into_response();
    };
    let policy = content_security_policy(&String::from_utf8_lossy(&bytes));
    if let Ok(v) = HeaderValue::from_str(&policy) {
        parts.headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The policy for `html`: scripts from this origin and the page's inline
/// scripts by SHA-256, WebAssembly compilation (`wasm-unsafe-eval`, not
/// `unsafe-eval`), media from the camera, connections (fetch, WebSocket) to
/// this origin only, no plugins, no framing, no `<base>` rewriting.
pub fn content_security_policy(html: &str) -> String {
    let mut scripts = String::from("'self' 'wasm-unsafe-eval'");
    for text in inline_scripts(html) {
        let digest = Sha256::digest(text.as_bytes());
        let _ = write!(
            scripts,
            " 'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
    }
    format!(
        "default-src 'self'; script-src {scripts}; style-src 'self'; \
         img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; \
         frame-ancestors 'none'; form-action 'self'"
    )
}

/// The text of every `<script>` element without a `src` attribute, exactly
/// as it appears between its tags (what a CSP hash covers).
fn inline_scripts(html: &str) -> Vec<&str> {
    // ASCII lowercasing keeps byte offsets, so indices carry over to `html`.
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(open) = lower[at..].find("<script").map(|i| at + i) {
        let Some(tag_end) = lower[open..].find('>').map(|i| open + i) else {
            break;
        };
        let text_start = tag_end + 1;
        let Some(close) = lower[text_start..].find("</script").map(|i| text_start + i) else {
            break;
        };
        let tag = &lower[open + "<script".len()..tag_end];
        let has_src = tag
            .split(|c: char| c.is_ascii_whitespace())
            .any(|attr| attr == "src" || attr.starts_with("src="));
        if !has_src {
            out.push(&html[text_start..close]);
        }
        at = close;
    }
    out
}

/// A path with no file extension is a client route (`/r/<room>`): serve
/// `index.html`. A missing asset is a plain 404.
async fn client_route(State(dir): State<PathBuf>, uri: Uri) -> Response {
    let last = uri.path().rsplit('/').next().unwrap_or_default();
    if last.contains('.') {
        return not_found();
    }
    let index = dir.join("index.html");
    if !inside(&dir, &index).await {
        return not_found();
    }
    match tokio::fs::read_to_string(index).await {
        Ok(html) => Html(html).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "The web client is not built: {}/index.html is missing. \
                 Build it with `trunk build --release` (see README.md) or set STATIC_DIR.",
                dir.display()
            ),
        )
            .into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn csp_hashes_exactly_the_inline_scripts() {
        let html = "<head><SCRIPT type=\"module\">alert(1)</script>\
                    <script src=\"/socket.io.min.js\"></script>\
                    <script data-src=x>b()</SCRIPT></head>";
        assert_eq!(inline_scripts(html), vec!["alert(1)", "b()"]);
        let csp = content_security_policy(html);
        // `printf 'alert(1)' | openssl dgst -sha256 -binary | base64`
        assert!(csp.contains(
            "script-src 'self' 'wasm-unsafe-eval' 'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=' 'sha256-"
        ));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("'unsafe-eval'"));
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("object-src 'none'"));
        assert_eq!(inline_scripts("<script>unterminated"), Vec::<&str>::new());
        assert_eq!(inline_scripts("no scripts"), Vec::<&str>::new());
    }

    #[test]
    fn trunk_hashed_names() {
        for hashed in [
            "/web-client-9957c8fa1c0107ef_bg.wasm",
            "/web-client-9957c8fa1c0107ef.js",
            "/style-5e61453f0c612840.css",
            "/a/b/style-e61453f0c612840.css",
        ] {
            assert!(is_hashed(hashed), "{hashed}");
        }
        for plain in [
            "/",
            "/index.html",
            "/socket.io.min.js",
            "/web-client.js",
            "/style-5E61453F0C612840.css",
            "/style-5e61453f0c612840",
            "/r/room-0123456789abcdef",
            "/style-5e61453f0c6128401.css",
        ] {
            assert!(!is_hashed(plain), "{plain}");
        }
    }

    #[tokio::test]
    async fn only_the_folders_own_files() {
        let base = std::env::temp_dir().join(format!("static-files-{}", std::process::id()));
        let dir = base.join("dist");
        let outside = base.join("secret.txt");
        tokio::fs::create_dir_all(dir.join("sub")).await.unwrap();
        tokio::fs::write(&outside, "secret").await.unwrap();
        tokio::fs::write(dir.join("app.js"), "x").await.unwrap();
        let link = |target: &Path, name: &str| {
            let _ = std::fs::remove_file(dir.join(name));
            std::os::unix::fs::symlink(target, dir.join(name)).unwrap();
        };
        link(&outside, "leak.txt");
        link(&base, "up");
        link(&dir.join("app.js"), "alias.js");
        for ok in [
            "/",
            "/app.js",
            "/alias.js",
            "/sub/",
            "/sub",
            "/missing.js",
            "/r/room",
        ] {
            assert_eq!(check_path(&dir, ok).await, Ok(()), "{ok}");
        }
        for bad in [
            "/leak.txt",
            "/up/secret.txt",
            "/.env",
            "/%2eenv",
            "/sub/../app.js",
            "//sub",
            "/sub//app.js",
            "/%5csub",
        ] {
            assert!(check_path(&dir, bad).await.is_err(), "{bad}");
        }
        tokio::fs::remove_dir_all(&base).await.unwrap();
    }
}
