//! Access to recording files (recordings.md §4): `GET /recordings/media-auth/`
//! answers nginx's `auth_request` with SigV4 headers for S3, and
//! `GET /media/<folder>/<id>.<ext>` (ours, for deployments without nginx)
//! runs the same checks and redirects to a presigned S3 URL.

use serde_json::json;

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::ports::Services;
use crate::recordings::model::{output_folder, recording_key, S3Settings};
use crate::recordings::store;
use crate::roles::Role;
use crate::routing::method_not_allowed;

/// How long a presigned download URL is valid.
pub const PRESIGNED_SECONDS: u32 = 60;

/// The extensions of recording files.
const EXTENSIONS: [&str; 2] = ["ogg", "mp4"];

/// `(recording id, extension)` found in `path`: `/media/<folder>/<uuid>`,
/// one character, then 1–10 alphanumerics (searched, not anchored).
pub fn find_media(path: &str, folder: &str) -> Option<(String, String)> {
    let prefix = format!("/media/{folder}/");
    let mut from = 0;
    while let Some(found) = path[from..].find(&prefix) {
        let start = from + found + prefix.len();
        if let Some(matched) = media_at(&path[start..]) {
            return Some(matched);
        }
        from = from + found + 1;
    }
    None
}

fn media_at(rest: &str) -> Option<(String, String)> {
    let uuid = rest.get(..36)?;
    let shape_ok = uuid.bytes().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    if !shape_ok {
        return None;
    }
    // One arbitrary character (a `.` in practice), then the extension.
    let mut after = rest.get(36..)?.chars();
    after.next()?;
    let tail = after.as_str();
    let extension: String = tail
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .take(10)
        .collect();
    if extension.is_empty() {
        return None;
    }
    Some((uuid.to_ascii_lowercase(), extension))
}

/// The path of a URL (absolute or not), without query or fragment.
fn url_path(url: &str) -> &str {
    let without_scheme = match url.find("://") {
        Some(index) => {
            let rest = &url[index + 3..];
            rest.find('/').map_or("", |slash| &rest[slash..])
        }
        None => url,
    };
    without_scheme.split(['?', '#']).next().unwrap_or_default()
}

/// The checks of §4 steps 2–7 on a path; the object key when allowed.
fn authorized_key(services: &Services, user_id: &str, path: &str) -> Result<String, ApiError> {
    let settings = services.settings();
    let folder = output_folder(&settings)?;
    let (id, extension) = find_media(path, &folder).ok_or_else(ApiError::permission_denied)?;
    if !EXTENSIONS.contains(&extension.as_str()) {
        return Err(ApiError::Custom {
            status: 400,
            body: json!({"detail": "Unsupported extension."}),
        });
    }
    let recording = store::find_for_media(services.db, &id, user_id)?
        .ok_or_else(|| ApiError::NotFoundDetail("No recording found for this event.".into()))?;
    if recording.mode.extension() != extension {
        return Err(ApiError::NotFoundDetail(
            "No recording found with this extension.".into(),
        ));
    }
    if !recording.role.is_some_and(Role::is_privileged) || !recording.status.is_saved() {
        return Err(ApiError::permission_denied());
    }
    Ok(recording_key(&folder, &id, recording.mode))
}

fn s3_bucket(services: &Services) -> Result<meet_s3::Bucket, ApiError> {
    Ok(S3Settings::load(&services.settings())?.bucket()?)
}

/// `GET /recordings/media-auth/`.
pub fn media_auth(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(request, services)?;
    let user = caller.require_user()?;
    if !matches!(request.method, Method::GET | Method::HEAD) {
        return Err(method_not_allowed(request));
    }
    let original = request
        .header("x-original-url")
        .ok_or_else(ApiError::permission_denied)?;
    let key = authorized_key(services, &user.id, url_path(original))?;
    let signed = s3_bucket(services)?
        .signed_get(&key, services.clock.now())
        .map_err(ApiError::internal)?;
    let mut response = ApiResponse::json(200, &json!("authorized"));
    for (name, value) in signed.headers() {
        response = response.with_header(name, value);
    }
    Ok(response)
}

/// `GET /media/<folder>/<id>.<ext>`: 302 to a presigned URL valid
/// [`PRESIGNED_SECONDS`].
pub fn download(request: &ApiRequest, services: &Services) -> Result<ApiResponse, ApiError> {
    let caller = authenticate(request, services)?;
    let user = caller.require_user()?;
    if !matches!(request.method, Method::GET | Method::HEAD) {
        return Err(method_not_allowed(request));
    }
    let key = match authorized_key(services, &user.id, &request.path) {
        // A path that names no recording file is not a resource here.
        Err(ApiError::PermissionDenied(_)) if !names_media(services, &request.path)? => {
            return Err(ApiError::NotFoundDetail("Not found.".into()))
        }
        other => other?,
    };
    let url = s3_bucket(services)?
        .presigned_get_url(&key, services.clock.now(), PRESIGNED_SECONDS)
        .map_err(ApiError::internal)?;
    Ok(ApiResponse::empty(302)
        .with_header("location", &url)
        .with_header("cache-control", "no-store"))
}

fn names_media(services: &Services, path: &str) -> Result<bool, ApiError> {
    let folder = output_folder(&services.settings())?;
    Ok(find_media(path, &folder).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "46d1a121-2426-484d-8fb3-09b5d886f7a8";

    #[test]
    fn media_paths_are_searched_as_upstream_does() {
        let found = |path: &str| find_media(path, "recordings");
        assert_eq!(
            found(&format!("/media/recordings/{ID}.mp4")),
            Some((ID.to_string(), "mp4".to_string()))
        );
        assert_eq!(
            found(&format!("/x/media/recordings/{}.ogg", ID.to_uppercase())),
            Some((ID.to_string(), "ogg".to_string()))
        );
        assert_eq!(found(&format!("/media/other/{ID}.mp4")), None);
        assert_eq!(found(&format!("/media/recordings/{ID}.")), None);
        assert_eq!(found("/media/recordings/not-a-uuid.mp4"), None);
        assert_eq!(
            found(&format!("/media/recordings/{ID}.mp4extra12345")).map(|(_, ext)| ext),
            Some("mp4extra12".to_string())
        );
    }

    #[test]
    fn original_urls_lose_origin_and_query() {
        assert_eq!(
            url_path("https://meet.example/media/a.mp4?x=1"),
            "/media/a.mp4"
        );
        assert_eq!(url_path("/media/a.mp4#f"), "/media/a.mp4");
        assert_eq!(url_path("https://meet.example"), "");
    }
}
