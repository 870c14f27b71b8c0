//! AWS Signature Version 4 for the recordings bucket, path-style
//! (`<endpoint>/<bucket>/<key>`, as MinIO and upstream's storage use it):
//!
//! * [`Bucket::signed_get`]: the headers `media-auth` returns to nginx so it can fetch
//!   an object (`Authorization`, `X-Amz-Date`, `X-Amz-Content-SHA256`, exactly what
//!   botocore's `S3SigV4Auth` adds to a body-less GET: signed headers
//!   `host;x-amz-content-sha256;x-amz-date`, payload hash of the empty body);
//! * [`Bucket::presigned_get_url`]: a query-string signed URL (`X-Amz-Expires`) for a
//!   direct download;
//! * [`Bucket::verify`]: the check S3 makes, for fakes in tests.
//!
//! Pure: the caller passes the time. Keys are encoded segment by segment, once
//! (S3 does not normalise paths), and the host keeps a non-default port.

pub mod sigv4;

use percent_encoding::{percent_decode_str, utf8_percent_encode};
use time::{Duration, OffsetDateTime};
use url::Url;

pub use sigv4::{Credentials, EMPTY_PAYLOAD_SHA256, UNSIGNED_PAYLOAD};

/// The signing service name of S3.
pub const SERVICE: &str = "s3";
/// Region signed for when `AWS_S3_REGION_NAME` is unset, as botocore does.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Longest validity S3 accepts for a presigned URL: 7 days.
pub const MAX_PRESIGNED_EXPIRY_SECONDS: u32 = 604_800;
/// How far a request's `X-Amz-Date` may be from S3's clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(15);

/// A configuration or input the signer cannot use. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    /// The reason only: the URL itself could carry a password.
    #[error("AWS_S3_ENDPOINT_URL is not usable: {0}")]
    BadEndpoint(&'static str),
    #[error("AWS_STORAGE_BUCKET_NAME is empty")]
    EmptyBucket,
    #[error("AWS_S3_ACCESS_KEY_ID or AWS_S3_SECRET_ACCESS_KEY is empty")]
    EmptyCredentials,
    #[error("an object key must not be empty")]
    EmptyKey,
    #[error("a presigned URL lasts from 1 to {MAX_PRESIGNED_EXPIRY_SECONDS} seconds (got {0})")]
    BadExpiry(u32),
}

/// Why [`Bucket::verify`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no signature (neither an Authorization header nor X-Amz-Signature)")]
    Missing,
    #[error("malformed signature: {0}")]
    Malformed(&'static str),
    #[error("signed with another access key, date, region or service")]
    WrongScope,
    #[error("request time too far from now")]
    ClockSkew,
    #[error("presigned URL expired")]
    Expired,
    #[error("signature does not match")]
    Mismatch,
}

/// The recordings bucket on an S3-compatible endpoint, with the credentials to sign for it.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// `http` or `https`.
    scheme: String,
    /// The `Host` header: host, plus `:port` when the port is not the scheme's default.
    host: String,
    /// Percent-encoded path of the endpoint without a trailing `/` (usually empty).
    base_path: String,
    bucket: String,
    region: String,
    credentials: Credentials,
}

/// The headers that let their holder `GET` one object until S3's clock-skew window ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedGet {
    /// `<endpoint>/<bucket>/<key>`, the key encoded.
    pub url: String,
    /// The `Host` the signature covers (with a non-default port).
    pub host: String,
    /// `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=…`
    pub authorization: String,
    /// `yyyymmddThhmmssZ`.
    pub amz_date: String,
    /// Hex SHA-256 of the empty payload.
    pub content_sha256: &'static str,
}

impl SignedGet {
    /// The response headers of `media-auth`, named as upstream's botocore names them.
    pub fn headers(&self) -> [(&'static str, &str); 3] {
        [
            ("Authorization", self.authorization.as_str()),
            ("X-Amz-Date", self.amz_date.as_str()),
            ("X-Amz-Content-SHA256", self.content_sha256),
        ]
    }
}

impl Bucket {
    /// `endpoint_url` is `AWS_S3_ENDPOINT_URL` (e.g. `http://minio:9000`); an empty
    /// `region` signs for [`DEFAULT_REGION`].
    pub fn new(
        endpoint_url: &str,
        bucket: &str,
        region: &str,
        credentials: Credentials,
    ) -> Result<Self, S3Error> {
        let endpoint = Url::parse(endpoint_url.trim())
            .map_err(|_| S3Error::BadEndpoint("not an absolute URL"))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(S3Error::BadEndpoint("the scheme must be http or https"));
        }
        if endpoint.query().is_some() || endpoint.fragment().is_some() {
            return Err(S3Error::BadEndpoint("no query or fragment allowed"));
        }
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            return Err(S3Error::BadEndpoint(
                "credentials belong in AWS_S3_ACCESS_KEY_ID and AWS_S3_SECRET_ACCESS_KEY",
            ));
        }
        let host_name = endpoint
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(S3Error::BadEndpoint("no host"))?;
        // `port()` is None for the scheme's default port, which the Host header omits.
        let host = match endpoint.port() {
            Some(port) => format!("{host_name}:{port}"),
            None => host_name.to_string(),
        };
        if bucket.is_empty() {
            return Err(S3Error::EmptyBucket);
        }
        if credentials.access_key_id.is_empty() || credentials.secret_access_key().is_empty() {
            return Err(S3Error::EmptyCredentials);
        }
        let region = region.trim();
        Ok(Self {
            scheme: endpoint.scheme().to_string(),
            host,
            base_path: endpoint.path().trim_end_matches('/').to_string(),
            bucket: bucket.to_string(),
            region: if region.is_empty() {
                DEFAULT_REGION.to_string()
            } else {
                region.to_string()
            },
            credentials,
        })
    }

    pub fn name(&self) -> &str {
        &self.bucket
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The `Host` header of requests to the endpoint.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `/<base>/<bucket>/<key>` with each segment percent-encoded once: the canonical URI.
    pub fn object_path(&self, key: &str) -> String {
        format!(
            "{}/{}/{}",
            self.base_path,
            utf8_percent_encode(&self.bucket, sigv4::PATH),
            utf8_percent_encode(key, sigv4::PATH)
        )
    }

    /// `<scheme>://<host>/<base>/<bucket>/<key>`, unsigned.
    pub fn object_url(&self, key: &str) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.object_path(key))
    }

    fn scope(&self, time: OffsetDateTime) -> sigv4::Scope<'_> {
        sigv4::Scope {
            time,
            region: &self.region,
            service: SERVICE,
        }
    }

    /// The headers for `GET <endpoint>/<bucket>/<key>` signed at `now`, as upstream's
    /// `media-auth` returns them to nginx.
    pub fn signed_get(&self, key: &str, now: OffsetDateTime) -> Result<SignedGet, S3Error> {
        if key.is_empty() {
            return Err(S3Error::EmptyKey);
        }
        let path = self.object_path(key);
        let amz_date = sigv4::amz_date(now);
        let headers = [
            ("host", self.host.as_str()),
            ("x-amz-content-sha256", EMPTY_PAYLOAD_SHA256),
            ("x-amz-date", amz_date.as_str()),
        ];
        let signature = sigv4::sign(
            &self.credentials,
            &self.scope(now),
            &sigv4::Request {
                method: "GET",
                path: &path,
                query: &[],
                headers: &headers,
                payload_sha256: EMPTY_PAYLOAD_SHA256,
            },
        );
        Ok(SignedGet {
            url: format!("{}://{}{}", self.scheme, self.host, path),
            host: self.host.clone(),
            authorization: signature.authorization(&self.credentials.access_key_id),
            amz_date,
            content_sha256: EMPTY_PAYLOAD_SHA256,
        })
    }

    /// A URL anyone may `GET` the object with for `expires_in_seconds` after `now`
    /// (`X-Amz-Expires`, 1 to 604800), signed for `host` only with an unsigned payload.
    pub fn presigned_get_url(
        &self,
        key: &str,
        now: OffsetDateTime,
        expires_in_seconds: u32,
    ) -> Result<String, S3Error> {
        if key.is_empty() {
            return Err(S3Error::EmptyKey);
        }
        if !(1..=MAX_PRESIGNED_EXPIRY_SECONDS).contains(&expires_in_seconds) {
            return Err(S3Error::BadExpiry(expires_in_seconds));
        }
        Ok(self.presign_path(&self.object_path(key), now, expires_in_seconds))
    }

    /// The presigned URL of an encoded `path` on the endpoint.
    fn presign_path(&self, path: &str, now: OffsetDateTime, expires_in_seconds: u32) -> String {
        let scope = self.scope(now);
        let credential = format!(
            "{}/{}",
            self.credentials.access_key_id,
            scope.credential_scope()
        );
        let amz_date = sigv4::amz_date(now);
        let expires = expires_in_seconds.to_string();
        let query = [
            ("X-Amz-Algorithm", sigv4::ALGORITHM),
            ("X-Amz-Credential", credential.as_str()),
            ("X-Amz-Date", amz_date.as_str()),
            ("X-Amz-Expires", expires.as_str()),
            ("X-Amz-SignedHeaders", "host"),
        ];
        let signature = sigv4::sign(
            &self.credentials,
            &scope,
            &sigv4::Request {
                method: "GET",
                path,
                query: &query,
                headers: &[("host", self.host.as_str())],
                payload_sha256: UNSIGNED_PAYLOAD,
            },
        );
        format!(
            "{}://{}{}?{}&X-Amz-Signature={}",
            self.scheme,
            self.host,
            path,
            sigv4::canonical_query(&query),
            signature.signature
        )
    }

    /// Checks a received request the way S3 does, header-signed (`Authorization`) or
    /// presigned (`X-Amz-Signature` in the query): same access key and region, date
    /// within [`MAX_CLOCK_SKEW`] of `now`, presigned URL not expired, and the signature
    /// recomputed over the received `path_and_query` (as sent, still encoded) and headers.
    pub fn verify(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        now: OffsetDateTime,
    ) -> Result<(), VerifyError> {
        let (path, raw_query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, query),
            None => (path_and_query, ""),
        };
        let mut query: Vec<(String, String)> = Vec::new();
        for pair in raw_query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| {
                percent_decode_str(text)
                    .decode_utf8()
                    .map(|text| text.into_owned())
                    .map_err(|_| VerifyError::Malformed("query is not UTF-8"))
            };
            query.push((decode(name)?, decode(value)?));
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
                .map(|(_, value)| *value)
        };
        let query_value = |name: &str| {
            query
                .iter()
                .find(|(candidate, _)| candidate == name)
                .map(|(_, value)| value.as_str())
        };

        let presigned = query_value("X-Amz-Signature").is_some();
        let (credential, signed_headers, signature, amz_date, payload) = if presigned {
            let get = |name| {
                query_value(name).ok_or(VerifyError::Malformed("presigned parameter missing"))
            };
            if get("X-Amz-Algorithm")? != sigv4::ALGORITHM {
                return Err(VerifyError::Malformed("algorithm"));
            }
            (
                get("X-Amz-Credential")?,
                get("X-Amz-SignedHeaders")?,
                get("X-Amz-Signature")?,
                get("X-Amz-Date")?,
                UNSIGNED_PAYLOAD,
            )
        } else {
            let authorization = header("authorization").ok_or(VerifyError::Missing)?;
            let fields = authorization
                .strip_prefix(sigv4::ALGORITHM)
                .and_then(|rest| rest.strip_prefix(' '))
                .ok_or(VerifyError::Malformed("algorithm"))?;
            let mut credential = None;
            let mut signed = None;
            let mut signature = None;
            for field in fields.split(',') {
                match field.trim().split_once('=') {
                    Some(("Credential", value)) => credential = Some(value),
                    Some(("SignedHeaders", value)) => signed = Some(value),
                    Some(("Signature", value)) => signature = Some(value),
                    _ => return Err(VerifyError::Malformed("authorization field")),
                }
            }
            let missing = VerifyError::Malformed("authorization field missing");
            (
                credential.ok_or(missing.clone())?,
                signed.ok_or(missing.clone())?,
                signature.ok_or(missing)?,
                header("x-amz-date").ok_or(VerifyError::Malformed("x-amz-date missing"))?,
                header("x-amz-content-sha256")
                    .ok_or(VerifyError::Malformed("x-amz-content-sha256 missing"))?,
            )
        };

        let signed_at = sigv4::parse_amz_date(amz_date).ok_or(VerifyError::Malformed("date"))?;
        let expected_credential = format!(
            "{}/{}",
            self.credentials.access_key_id,
            self.scope(signed_at).credential_scope()
        );
        if credential != expected_credential {
            return Err(VerifyError::WrongScope);
        }
        if signed_at - now > MAX_CLOCK_SKEW {
            return Err(VerifyError::ClockSkew);
        }
        if presigned {
            let expires: i64 = query_value("X-Amz-Expires")
                .and_then(|text| text.parse().ok())
                .filter(|seconds| (1..=i64::from(MAX_PRESIGNED_EXPIRY_SECONDS)).contains(seconds))
                .ok_or(VerifyError::Malformed("X-Amz-Expires"))?;
            if now > signed_at + Duration::seconds(expires) {
                return Err(VerifyError::Expired);
            }
        } else if now - signed_at > MAX_CLOCK_SKEW {
            return Err(VerifyError::ClockSkew);
        }

        let mut signed_values = Vec::new();
        for name in signed_headers.split(';') {
            let value = header(name).ok_or(VerifyError::Malformed("signed header missing"))?;
            signed_values.push((name, value));
        }
        let signed_query: Vec<(&str, &str)> = query
            .iter()
            .filter(|(name, _)| name != "X-Amz-Signature")
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let recomputed = sigv4::sign(
            &self.credentials,
            &self.scope(signed_at),
            &sigv4::Request {
                method,
                path,
                query: &signed_query,
                headers: &signed_values,
                payload_sha256: payload,
            },
        );
        if recomputed.signed_headers != signed_headers {
            return Err(VerifyError::Malformed(
                "signed headers not sorted lower case",
            ));
        }
        if sigv4::signatures_match(&recomputed.signature, signature) {
            Ok(())
        } else {
            Err(VerifyError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-02 00:40:00 UTC);

    fn minio() -> Bucket {
        Bucket::new(
            "http://minio:9000",
            "meet-media-storage",
            "",
            Credentials::new("meet", "password-of-minio"),
        )
        .unwrap()
    }

    #[test]
    fn the_aws_presigned_url_example() {
        // S3 API reference, "Authenticating Requests: Using Query Parameters": the
        // example is virtual-hosted, which is path-style with the bucket in the host.
        let aws = Bucket {
            scheme: "https".into(),
            host: "examplebucket.s3.amazonaws.com".into(),
            base_path: String::new(),
            bucket: "examplebucket".into(),
            region: "us-east-1".into(),
            credentials: Credentials::new(
                "AKIAIOSFODNN7EXAMPLE",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
        };
        let path = "/test.txt";
        let time = datetime!(2013-05-24 00:00:00 UTC);
        let credential = "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request";
        let query = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", credential),
            ("X-Amz-Date", "20130524T000000Z"),
            ("X-Amz-Expires", "86400"),
            ("X-Amz-SignedHeaders", "host"),
        ];
        let request = sigv4::Request {
            method: "GET",
            path,
            query: &query,
            headers: &[("host", "examplebucket.s3.amazonaws.com")],
            payload_sha256: UNSIGNED_PAYLOAD,
        };
        let (canonical, _) = sigv4::canonical_request(&request);
        assert_eq!(
            sigv4::payload_sha256(canonical.as_bytes()),
            "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"
        );
        let signature = sigv4::sign(&aws.credentials, &aws.scope(time), &request);
        assert_eq!(
            signature.signature,
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );

        // The same through the URL builder of `presigned_get_url`.
        assert_eq!(
            aws.presign_path(path, time, 86_400),
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    #[test]
    fn signed_get_is_what_botocore_gives_nginx() {
        let signed = minio()
            .signed_get("recordings/3f1c0e2a-8f5e-4b7e-9a51-0d2f3c4b5a69.mp4", NOW)
            .unwrap();
        assert_eq!(
            signed.url,
            "http://minio:9000/meet-media-storage/recordings/3f1c0e2a-8f5e-4b7e-9a51-0d2f3c4b5a69.mp4"
        );
        assert_eq!(signed.host, "minio:9000");
        assert_eq!(signed.amz_date, "20261202T004000Z");
        assert_eq!(signed.content_sha256, EMPTY_PAYLOAD_SHA256);
        let prefix = "AWS4-HMAC-SHA256 Credential=meet/20261202/us-east-1/s3/aws4_request, \
                      SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=";
        let signature = signed.authorization.strip_prefix(prefix).unwrap();
        assert_eq!(signature.len(), 64);
        assert!(signature
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));

        // Recomputed independently from the canonical request the spec describes.
        let canonical = format!(
            "GET\n/meet-media-storage/recordings/3f1c0e2a-8f5e-4b7e-9a51-0d2f3c4b5a69.mp4\n\n\
             host:minio:9000\nx-amz-content-sha256:{EMPTY_PAYLOAD_SHA256}\nx-amz-date:20261202T004000Z\n\n\
             host;x-amz-content-sha256;x-amz-date\n{EMPTY_PAYLOAD_SHA256}"
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n20261202T004000Z\n20261202/us-east-1/s3/aws4_request\n{}",
            sigv4::payload_sha256(canonical.as_bytes())
        );
        let key = sigv4::signing_key("password-of-minio", "20261202", "us-east-1", "s3");
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&key).unwrap();
        hmac::Mac::update(&mut mac, to_sign.as_bytes());
        assert_eq!(
            signature,
            hex::encode(hmac::Mac::finalize(mac).into_bytes())
        );

        assert_eq!(
            signed.headers(),
            [
                ("Authorization", signed.authorization.as_str()),
                ("X-Amz-Date", "20261202T004000Z"),
                ("X-Amz-Content-SHA256", EMPTY_PAYLOAD_SHA256),
            ]
        );
    }

    #[test]
    fn keys_are_encoded_once_per_segment() {
        let bucket = minio();
        assert_eq!(
            bucket.object_path("recordings/a b+c%20é~x_y-z.ogg"),
            "/meet-media-storage/recordings/a%20b%2Bc%2520%C3%A9~x_y-z.ogg"
        );
        // S3 does not normalise: `//`, `.` and `..` segments are signed as they are.
        assert_eq!(
            bucket.object_path("/a/./b/../c"),
            "/meet-media-storage//a/./b/../c"
        );
    }

    #[test]
    fn the_host_keeps_a_non_default_port_only() {
        let credentials = || Credentials::new("a", "b");
        for (endpoint, host, url) in [
            ("http://minio:9000", "minio:9000", "http://minio:9000/bkt/k"),
            ("http://minio:80", "minio", "http://minio/bkt/k"),
            (
                "https://s3.example.org:443/",
                "s3.example.org",
                "https://s3.example.org/bkt/k",
            ),
            (
                "https://s3.example.org:8443",
                "s3.example.org:8443",
                "https://s3.example.org:8443/bkt/k",
            ),
            ("http://[::1]:9000", "[::1]:9000", "http://[::1]:9000/bkt/k"),
            (
                "https://gw.example.org/s3/",
                "gw.example.org",
                "https://gw.example.org/s3/bkt/k",
            ),
        ] {
            let bucket = Bucket::new(endpoint, "bkt", "eu-west-3", credentials()).unwrap();
            assert_eq!(bucket.host(), host, "{endpoint}");
            assert_eq!(bucket.object_url("k"), url, "{endpoint}");
            assert_eq!(bucket.signed_get("k", NOW).unwrap().url, url);
        }
    }

    #[test]
    fn bad_configurations_are_refused() {
        let ok = || Credentials::new("a", "b");
        for endpoint in [
            "",
            "minio:9000",
            "ftp://minio",
            "http://minio?x=1",
            "http://minio#x",
            "http://user:hunter2@minio",
            "http://",
        ] {
            let error = Bucket::new(endpoint, "bkt", "", ok()).unwrap_err();
            assert!(matches!(error, S3Error::BadEndpoint(_)), "{endpoint}");
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
        assert_eq!(
            Bucket::new("http://minio", "", "", ok()).unwrap_err(),
            S3Error::EmptyBucket
        );
        assert_eq!(
            Bucket::new("http://minio", "b", "", Credentials::new("a", "")).unwrap_err(),
            S3Error::EmptyCredentials
        );
        assert_eq!(minio().region(), DEFAULT_REGION);
        assert_eq!(minio().signed_get("", NOW), Err(S3Error::EmptyKey));
        assert_eq!(
            minio().presigned_get_url("k", NOW, 0),
            Err(S3Error::BadExpiry(0))
        );
        assert_eq!(
            minio().presigned_get_url("k", NOW, 604_801),
            Err(S3Error::BadExpiry(604_801))
        );
        let message = S3Error::EmptyCredentials.to_string();
        assert!(!message.contains("password-of-minio"));
    }

    fn path_and_query(url: &str) -> &str {
        let after_scheme = url.split_once("://").unwrap().1;
        &after_scheme[after_scheme.find('/').unwrap()..]
    }

    #[test]
    fn signed_headers_verify_and_tampering_does_not() {
        let bucket = minio();
        let signed = bucket.signed_get("recordings/x.mp4", NOW).unwrap();
        let path = path_and_query(&signed.url).to_string();
        let mut headers: Vec<(&str, &str)> = signed.headers().to_vec();
        headers.push(("Host", "minio:9000"));
        assert_eq!(bucket.verify("GET", &path, &headers, NOW), Ok(()));
        // Within the skew window, and not beyond.
        let later = NOW + Duration::minutes(14);
        assert_eq!(bucket.verify("GET", &path, &headers, later), Ok(()));
        let too_late = NOW + Duration::minutes(16);
        assert_eq!(
            bucket.verify("GET", &path, &headers, too_late),
            Err(VerifyError::ClockSkew)
        );
        // Another object, method or host.
        assert_eq!(
            bucket.verify("GET", "/meet-media-storage/recordings/y.mp4", &headers, NOW),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            bucket.verify("HEAD", &path, &headers, NOW),
            Err(VerifyError::Mismatch)
        );
        let mut other_host = headers.clone();
        other_host[3] = ("Host", "minio");
        assert_eq!(
            bucket.verify("GET", &path, &other_host, NOW),
            Err(VerifyError::Mismatch)
        );
        // Another secret signs differently.
        let impostor = Bucket::new(
            "http://minio:9000",
            "meet-media-storage",
            "",
            Credentials::new("meet", "guessed"),
        )
        .unwrap();
        let forged = impostor.signed_get("recordings/x.mp4", NOW).unwrap();
        let mut forged_headers: Vec<(&str, &str)> = forged.headers().to_vec();
        forged_headers.push(("Host", "minio:9000"));
        assert_eq!(
            bucket.verify("GET", &path, &forged_headers, NOW),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            bucket.verify("GET", &path, &[("Host", "minio:9000")], NOW),
            Err(VerifyError::Missing)
        );
    }

    #[test]
    fn presigned_urls_verify_until_they_expire() {
        let bucket = minio();
        let url = bucket
            .presigned_get_url("recordings/a b.ogg", NOW, 60)
            .unwrap();
        assert!(url.starts_with(
            "http://minio:9000/meet-media-storage/recordings/a%20b.ogg?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=meet%2F20261202%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20261202T004000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature="
        ));
        let target = path_and_query(&url);
        let host = [("host", "minio:9000")];
        assert_eq!(bucket.verify("GET", target, &host, NOW), Ok(()));
        assert_eq!(
            bucket.verify("GET", target, &host, NOW + Duration::seconds(60)),
            Ok(())
        );
        assert_eq!(
            bucket.verify("GET", target, &host, NOW + Duration::seconds(61)),
            Err(VerifyError::Expired)
        );
        let longer = target.replace("X-Amz-Expires=60", "X-Amz-Expires=6000");
        assert_eq!(
            bucket.verify("GET", &longer, &host, NOW),
            Err(VerifyError::Mismatch)
        );
        let other = target.replace("a%20b.ogg", "a%20c.ogg");
        assert_eq!(
            bucket.verify("GET", &other, &host, NOW),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            bucket.verify("GET", target, &[("host", "minio")], NOW),
            Err(VerifyError::Mismatch)
        );
    }
}
