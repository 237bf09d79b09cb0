//! S3's signed streaming uploads (`aws-chunked`): every chunk carries a signature
//! chained from the seed (the request's own signature), and the optional trailer one
//! more. Each is recomputed with `aws-sigv4`'s `sign_chunk` and `sign_trailer`.

use aws_sigv4::http_request::SigningSettings;
use aws_sigv4::sign::v4::{self, SigningParams};
use aws_smithy_runtime_api::http::Headers;
use bytes::Bytes;

use crate::emulator::sigv4::Failure;

pub const SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";

/// One decoded chunk: its data and the signature it came with.
struct Chunk<'a> {
    data: &'a [u8],
    signature: &'a str,
}

/// Checks every chunk signature (and the trailer's, when `trailer`), starting from
/// the seed signature.
pub fn verify(
    body: &[u8],
    seed: &str,
    params: &SigningParams<'_, SigningSettings>,
    trailer: bool,
) -> Result<(), Failure> {
    let mut rest = body;
    let mut previous = seed.to_owned();
    loop {
        let (chunk, after) = next_chunk(rest)?;
        rest = after;
        let expected = v4::sign_chunk(&Bytes::copy_from_slice(chunk.data), &previous, params)
            .map_err(|_| Failure::Mismatch)?;
        if !crate::emulator::sigv4::same(expected.signature(), chunk.signature) {
            return Err(Failure::Mismatch);
        }
        expected.signature().clone_into(&mut previous);
        if chunk.data.is_empty() {
            break;
        }
    }
    if trailer {
        verify_trailer(rest, &previous, params)
    } else if rest == b"\r\n" || rest.is_empty() {
        Ok(())
    } else {
        Err(Failure::IncompleteBody)
    }
}

/// `HEX;chunk-signature=SIG\r\nDATA\r\n`; the last chunk has no data and, with a
/// trailer, no closing CRLF of its own.
fn next_chunk(buf: &[u8]) -> Result<(Chunk<'_>, &[u8]), Failure> {
    let line_end = find(buf, b"\r\n").ok_or(Failure::IncompleteBody)?;
    let line = std::str::from_utf8(&buf[..line_end]).map_err(|_| Failure::IncompleteBody)?;
    let (size, signature) = line
        .split_once(";chunk-signature=")
        .ok_or(Failure::IncompleteBody)?;
    let size = usize::from_str_radix(size, 16).map_err(|_| Failure::IncompleteBody)?;
    let start = line_end + 2;
    let end = start.checked_add(size).ok_or(Failure::IncompleteBody)?;
    let data = buf.get(start..end).ok_or(Failure::IncompleteBody)?;
    let mut rest = &buf[end..];
    if size > 0 {
        rest = rest.strip_prefix(b"\r\n").ok_or(Failure::IncompleteBody)?;
    }
    Ok((Chunk { data, signature }, rest))
}

/// `name:value\r\n` lines, the last being `x-amz-trailer-signature`, then a blank line.
fn verify_trailer(
    buf: &[u8],
    previous: &str,
    params: &SigningParams<'_, SigningSettings>,
) -> Result<(), Failure> {
    let text = std::str::from_utf8(buf).map_err(|_| Failure::IncompleteBody)?;
    let mut headers = Headers::new();
    let mut signature = None;
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(Failure::IncompleteBody)?;
        if name.eq_ignore_ascii_case("x-amz-trailer-signature") {
            signature = Some(value.trim().to_owned());
        } else {
            headers.append(name.to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let signature = signature.ok_or(Failure::IncompleteBody)?;
    let expected = v4::sign_trailer(&headers, previous, params).map_err(|_| Failure::Mismatch)?;
    if crate::emulator::sigv4::same(expected.signature(), &signature) {
        Ok(())
    } else {
        Err(Failure::Mismatch)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
