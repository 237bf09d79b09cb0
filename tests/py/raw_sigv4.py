"""Sends one hand-shaped SigV4 request, signed by botocore, to the emulated AWS:
the requests no SDK sends on purpose (a body that does not match its hash, a
malformed Authorization header, no X-Amz-Date), presigned URLs, and S3's signed
streaming (aws-chunked) upload, whose chunk signatures are computed here.

stdin:  {"endpoint": "http://127.0.0.1:PORT",
         "creds": {"AccessKeyId": ..., "SecretAccessKey": ..., "SessionToken": ...},
         "case": "body-mismatch" | "malformed-auth" | "no-date" | "presign-s3"
                 | "presign-sts" | "chunked" | "chunked-tampered",
         "bucket": ..., "key": ..., "body": "..."}
stdout: {"status": 403, "code": "SignatureDoesNotMatch", "body": "..."}
"""
import hashlib
import hmac
import http.client
import json
import re
import sys
import urllib.parse

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"
STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def credentials(doc):
    c = doc["creds"]
    return Credentials(c["AccessKeyId"], c["SecretAccessKey"], c.get("SessionToken"))


def send(method, url, headers, body=b""):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    path = parts.path + ("?" + parts.query if parts.query else "")
    conn.request(method, path, body=body, headers=dict(headers))
    resp = conn.getresponse()
    text = resp.read().decode("utf-8", "replace")
    m = re.search(r"<Code>([^<]+)</Code>", text) or re.search(r'"__type":\s*"([^"]+)"', text)
    return {"status": resp.status, "code": m.group(1) if m else None, "body": text[:2000]}


def signed(doc, method, url, body, auth_class, service, headers=None):
    req = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    auth_class(credentials(doc), service, REGION).add_auth(req)
    return req


def object_url(doc):
    return f"{doc['endpoint']}/{doc['bucket']}/{doc['key']}"


def body_mismatch(doc):
    req = signed(doc, "PUT", object_url(doc), doc["body"].encode(), S3SigV4Auth, "s3")
    return send("PUT", req.url, req.headers.items(), b"tampered " + doc["body"].encode())


def malformed_auth(doc):
    req = signed(doc, "POST", doc["endpoint"] + "/", b"Action=GetCallerIdentity&Version=2011-06-15",
                 SigV4Auth, "sts", {"Content-Type": "application/x-www-form-urlencoded"})
    headers = dict(req.headers.items())
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=" + doc["creds"]["AccessKeyId"]
    return send("POST", req.url, headers.items(), req.body)


def no_date(doc):
    req = signed(doc, "GET", f"{doc['endpoint']}/{doc['bucket']}", b"", S3SigV4Auth, "s3")
    headers = {k: v for k, v in req.headers.items() if k.lower() != "x-amz-date"}
    return send("GET", req.url, headers.items())


def presign(doc, url, auth_class, service):
    req = AWSRequest(method="GET", url=url)
    auth_class(credentials(doc), service, REGION, expires=300).add_auth(req)
    return send("GET", req.url, [])


def chunked(doc, tamper):
    """Two data chunks and the final empty one, each signed over the previous signature."""
    data = doc["body"].encode()
    chunks = [data[: len(data) // 2], data[len(data) // 2:], b""]
    headers = {"X-Amz-Content-SHA256": STREAMING, "Content-Encoding": "aws-chunked",
               "X-Amz-Decoded-Content-Length": str(len(data))}
    req = AWSRequest(method="PUT", url=object_url(doc), data=b"", headers=headers)
    auth = SigV4Auth(credentials(doc), "s3", REGION)
    auth.add_auth(req)
    stamp = req.context["timestamp"]
    scope = f"{stamp[:8]}/{REGION}/s3/aws4_request"
    key = signing_key(doc["creds"]["SecretAccessKey"], stamp[:8])
    previous = re.search(r"Signature=([0-9a-f]+)", req.headers["Authorization"]).group(1)
    body = b""
    for chunk in chunks:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", stamp, scope, previous, EMPTY_SHA256,
                             hashlib.sha256(chunk).hexdigest()])
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        sent = chunk.replace(b"a", b"b") if tamper and chunk else chunk
        body += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + sent + b"\r\n"
    headers = dict(req.headers.items())
    headers["Content-Length"] = str(len(body))
    return send("PUT", req.url, headers.items(), body)


def signing_key(secret, day):
    k = ("AWS4" + secret).encode()
    for part in (day, REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def main():
    doc = json.load(sys.stdin)
    case = doc["case"]
    if case == "body-mismatch":
        out = body_mismatch(doc)
    elif case == "malformed-auth":
        out = malformed_auth(doc)
    elif case == "no-date":
        out = no_date(doc)
    elif case == "presign-s3":
        out = presign(doc, object_url(doc), S3SigV4QueryAuth, "s3")
    elif case == "presign-sts":
        out = presign(doc, doc["endpoint"] + "/?Action=GetCallerIdentity&Version=2011-06-15",
                      SigV4QueryAuth, "sts")
    elif case in ("chunked", "chunked-tampered"):
        out = chunked(doc, case == "chunked-tampered")
    else:
        raise SystemExit(f"unknown case {case}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
