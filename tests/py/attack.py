"""Runs AWS calls with credentials that arrive on stdin (never argv or env), as an
attacker holding them would, and reports each call's outcome as JSON on stdout.

stdin:  {"creds": {"AccessKeyId": ..., "SecretAccessKey": ..., "SessionToken": ...},
         "calls": [{"name": "...", "service": "iam", "op": "put_user_policy", "args": {...}}],
         "signed_ago": 1200}   (optional: sign as if this many seconds ago)
stdout: [{"name": ..., "ok": true, "result": {...}} or
         {"name": ..., "ok": false, "code": "AccessDenied", "message": "..."}]

The endpoint comes from AWS_ENDPOINT_URL (the emulated AWS).
"""
import datetime
import json
import sys

import boto3
import botocore.config
import botocore.exceptions


def client(service, creds):
    return boto3.client(
        service,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
        region_name="us-east-1",
        config=botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def run(call, creds):
    try:
        c = client(call["service"], creds)
        out = getattr(c, call["op"])(**call.get("args", {}))
        out.pop("ResponseMetadata", None)
        if "Body" in out:
            out["Body"] = out["Body"].read().decode("utf-8", "replace")
        return {"name": call["name"], "ok": True, "result": json.loads(json.dumps(out, default=str))}
    except botocore.exceptions.ClientError as e:
        err = e.response.get("Error", {})
        return {"name": call["name"], "ok": False, "code": err.get("Code"), "message": err.get("Message", "")}
    except Exception as e:  # noqa: BLE001 - every failure is a result to report
        return {"name": call["name"], "ok": False, "code": type(e).__name__, "message": str(e)}


def sign_in_the_past(seconds):
    """botocore's SigV4 signers take their time from get_current_datetime."""
    import botocore.auth

    real = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda *a, **k: real(*a, **k) - datetime.timedelta(seconds=seconds)


def main():
    doc = json.load(sys.stdin)
    if doc.get("signed_ago"):
        sign_in_the_past(doc["signed_ago"])
    print(json.dumps([run(c, doc["creds"]) for c in doc["calls"]]))


if __name__ == "__main__":
    main()
