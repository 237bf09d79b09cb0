"""Admin-side setup of the emulated AWS account for the end-to-end tests.

Runs with throw-away admin credentials against the fault proxy (AWS_ENDPOINT_URL),
so the proxy sees CreateVirtualMFADevice and learns the seed. Prints JSON.
"""
import json
import sys

import boto3


# What keyward's machine policy gives every machine for its role sessions.
OWN_SOURCE_IDENTITY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:SetSourceIdentity", "Resource": "*",
                   "Condition": {"StringEquals": {"sts:SourceIdentity": "${aws:username}"}}}],
}


def make_user(name, role=None):
    iam = boto3.client("iam")
    user = iam.create_user(UserName=name, Path="/keyward/")["User"]
    iam.put_user_policy(UserName=name, PolicyName="own-source-identity", PolicyDocument=json.dumps(OWN_SOURCE_IDENTITY))
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
                    "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                    "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
                }
            ],
        }
        r = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=43200)
        out["role_arn"] = r["Role"]["Arn"]
    return out


UNRELATED = {
    "Sid": "UnrelatedReadOnly",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::{bucket}/public/*",
}


def make_world(groups, bucket):
    """Groups, a bucket whose policy has an unrelated statement, and a KMS key."""
    iam = boto3.client("iam")
    for g in groups:
        iam.create_group(GroupName=g)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    st = dict(UNRELATED, Resource=UNRELATED["Resource"].format(bucket=bucket))
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [st]}))
    key = boto3.client("kms").create_key(Description="keyward test key")["KeyMetadata"]
    return {"bucket": bucket, "key_arn": key["Arn"], "unrelated": st}


def user_state(name):
    iam = boto3.client("iam")
    try:
        user = iam.get_user(UserName=name)["User"]
    except iam.exceptions.NoSuchEntityException:
        return {"exists": False}
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=name)["Tags"]}
    return {
        "exists": True,
        "arn": user["Arn"],
        "path": user["Path"],
        "tags": tags,
        "groups": sorted(g["GroupName"] for g in iam.list_groups_for_user(UserName=name)["Groups"]),
        "mfa": [d["SerialNumber"] for d in iam.list_mfa_devices(UserName=name)["MFADevices"]],
        "keys": [k["AccessKeyId"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]],
        "inline": {p: iam.get_user_policy(UserName=name, PolicyName=p)["PolicyDocument"] for p in iam.list_user_policies(UserName=name)["PolicyNames"]},
        "attached": [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]],
    }


def role_state(name):
    iam = boto3.client("iam")
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except iam.exceptions.NoSuchEntityException:
        return {"exists": False}
    inline = {p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"] for p in iam.list_role_policies(RoleName=name)["PolicyNames"]}
    return {
        "exists": True,
        "arn": role["Arn"],
        "trust": role["AssumeRolePolicyDocument"],
        "boundary": role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn"),
        "tags": {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]},
        "inline": inline,
    }


def managed_policy(arn):
    iam = boto3.client("iam")
    p = iam.get_policy(PolicyArn=arn)["Policy"]
    return iam.get_policy_version(PolicyArn=arn, VersionId=p["DefaultVersionId"])["PolicyVersion"]["Document"]


def policies(bucket, key_arn):
    s3 = boto3.client("s3")
    try:
        b = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except s3.exceptions.ClientError:
        b = None
    k = json.loads(boto3.client("kms").get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    return {"bucket": b, "key": k}


def main():
    cmd = sys.argv[1]
    if cmd == "make-world":
        print(json.dumps(make_world(sys.argv[3:], sys.argv[2])))
    elif cmd == "role":
        print(json.dumps(role_state(sys.argv[2]), default=str))
    elif cmd == "managed-policy":
        print(json.dumps(managed_policy(sys.argv[2]), default=str))
    elif cmd == "user":
        print(json.dumps(user_state(sys.argv[2]), default=str))
    elif cmd == "policies":
        print(json.dumps(policies(sys.argv[2], sys.argv[3])))
    elif cmd == "caller-direct":
        # Straight to moto with a long-term key from the environment.
        sts = boto3.client("sts", endpoint_url=sys.argv[2])
        try:
            print(json.dumps({"arn": sts.get_caller_identity()["Arn"]}))
        except sts.exceptions.ClientError as e:
            print(json.dumps({"code": e.response["Error"]["Code"]}))
    elif cmd == "add-foreign-statement":
        s3 = boto3.client("s3")
        doc = json.loads(s3.get_bucket_policy(Bucket=sys.argv[2])["Policy"])
        doc["Statement"].append({"Sid": "AddedMeanwhile", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                                 "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::" + sys.argv[2]})
        s3.put_bucket_policy(Bucket=sys.argv[2], Policy=json.dumps(doc))
        print("{}")
    elif cmd == "make-plain-user":
        boto3.client("iam").create_user(UserName=sys.argv[2])
        print("{}")
    elif cmd == "put-bucket-policy-raw":
        boto3.client("s3").put_bucket_policy(Bucket=sys.argv[2], Policy=sys.argv[3])
        print("{}")
    elif cmd == "make-user":
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
