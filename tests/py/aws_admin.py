"""Admin-side setup of the emulated AWS account for the end-to-end tests.

Runs with throw-away admin credentials against the fault proxy (AWS_ENDPOINT_URL),
so the proxy sees CreateVirtualMFADevice and learns the seed. Prints JSON.
"""
import json
import sys

import boto3


def make_user(name, role=None):
    iam = boto3.client("iam")
    user = iam.create_user(UserName=name, Path="/keyward/")["User"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    mfa = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    # moto checks no codes here; real AWS wants two consecutive ones.
    iam.enable_mfa_device(
        UserName=name,
        SerialNumber=mfa["SerialNumber"],
        AuthenticationCode1="111111",
        AuthenticationCode2="222222",
    )
    out = {
        "user_arn": user["Arn"],
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
        "mfa_serial": mfa["SerialNumber"],
    }
    if role:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": user["Arn"]},
                    "Action": "sts:AssumeRole",
                    "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
                }
            ],
        }
        r = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=43200)
        out["role_arn"] = r["Role"]["Arn"]
    return out


def main():
    cmd = sys.argv[1]
    if cmd == "make-user":
        role = sys.argv[3] if len(sys.argv) > 3 else None
        print(json.dumps(make_user(sys.argv[2], role)))
    elif cmd == "caller":
        # boto3 as a real client: credentials through the profile's credential_process.
        session = boto3.Session(profile_name=sys.argv[2])
        print(json.dumps(session.client("sts").get_caller_identity()["Arn"]))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
