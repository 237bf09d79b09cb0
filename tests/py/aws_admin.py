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


def make_roles(bucket, *groups):
    """data-reader (for the groups, with a SourceIdentity) and data-chained (from
    data-reader): roles a machine assumes, and one it chains into."""
    iam = boto3.client("iam")
    acct = "123456789012"
    read_bucket = {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"],
                   "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}
    reader_trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"},
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
        "Condition": {"StringLike": {"sts:SourceIdentity": "*-*"}}}]}
    reader = iam.create_role(RoleName="data-reader", AssumeRolePolicyDocument=json.dumps(reader_trust))["Role"]
    chained_trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": reader["Arn"]},
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"]}]}
    chained = iam.create_role(RoleName="data-chained", AssumeRolePolicyDocument=json.dumps(chained_trust))["Role"]
    iam.put_role_policy(RoleName="data-reader", PolicyName="data", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        read_bucket, {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": chained["Arn"]},
        {"Effect": "Allow", "Action": "sts:SetSourceIdentity", "Resource": "*"}]}))
    iam.put_role_policy(RoleName="data-chained", PolicyName="data", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [read_bucket]}))
    for g in groups:
        iam.put_group_policy(GroupName=g, PolicyName="data", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject", "s3:PutObject"],
             "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": reader["Arn"]}]}))
    return {"reader": reader["Arn"], "chained": chained["Arn"]}


def make_attack_targets(bucket, group):
    """What an attacker would reach for: a group with admin rights, a powerful role and
    an instance profile to pass it to, and a group right that leaves only iam:PassRole
    in the way."""
    iam = boto3.client("iam")
    acct = "123456789012"
    iam.create_group(GroupName="admins")
    iam.put_group_policy(GroupName="admins", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="ops-admin", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.put_role_policy(RoleName="ops-admin", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    iam.create_instance_profile(InstanceProfileName="ops-profile")
    iam.put_group_policy(GroupName=group, PolicyName="instance-profiles", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:AddRoleToInstanceProfile",
                                                  "Resource": f"arn:aws:iam::{acct}:instance-profile/*"}]}))
    # A role anyone in the account may assume, with any source identity and session
    # tags, and the common "manage your own credentials" rights: what a group may
    # grant, which keyward's denies must still hold against.
    open_trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"},
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]}]}
    open_role = iam.create_role(RoleName="open-role", AssumeRolePolicyDocument=json.dumps(open_trust))["Role"]
    iam.put_group_policy(GroupName=group, PolicyName="self-service", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": open_role["Arn"]},
            {"Effect": "Allow", "Action": ["iam:TagUser", "iam:UntagUser", "iam:EnableMFADevice",
                                           "iam:ResyncMFADevice", "iam:UploadSSHPublicKey",
                                           "iam:CreateLoginProfile", "iam:CreateServiceSpecificCredential"],
             "Resource": f"arn:aws:iam::{acct}:user/keyward/${{aws:username}}"},
            {"Effect": "Allow", "Action": "iam:CreateVirtualMFADevice",
             "Resource": f"arn:aws:iam::{acct}:mfa/${{aws:username}}*"}]}))
    boto3.client("s3").put_object(Bucket=bucket, Key="secret.txt", Body=b"the data")
    return {"role": role["Arn"]}


def plant_escalation(name):
    """A machine-looking user that may write its own policies: an escalation the
    analysis must find (its negative control)."""
    iam = boto3.client("iam")
    iam.create_user(UserName=name, Path="/keyward/", Tags=[{"Key": "keyward-owner", "Value": "mallory"}])
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PutUserPolicy",
                                                  "Resource": "arn:aws:iam::123456789012:user/keyward/${aws:username}"}]}
    iam.put_user_policy(UserName=name, PolicyName="self-edit", PolicyDocument=json.dumps(doc))
    return {}


def make_old_account(bucket):
    """An account as the earlier keyward version left it: its self-service policy (which
    let a machine write policies on itself), its enroller role, a machine under it,
    a machine revoked with the old dated deny, and bucket statements without MFA."""
    iam = boto3.client("iam")
    acct = "123456789012"
    users = f"arn:aws:iam::{acct}:user/keyward/*"
    mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    old = {"Version": "2012-10-17", "Statement": [
        {"Sid": "OwnAccessKeys", "Effect": "Allow", "Action": ["iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:ListAccessKeys", "iam:GetUser"],
         "Resource": f"arn:aws:iam::{acct}:user/keyward/${{aws:username}}", "Condition": mfa},
        {"Sid": "RevokeSameOwner", "Effect": "Allow", "Action": ["iam:GetUser", "iam:TagUser", "iam:PutUserPolicy", "iam:DeleteUserPolicy", "iam:DetachUserPolicy"],
         "Resource": users, "Condition": {"StringEquals": {"iam:ResourceTag/keyward-owner": "${aws:PrincipalTag/keyward-owner}"}, **mfa}},
        {"Sid": "ManagedBucketPolicies", "Effect": "Allow", "Action": ["s3:GetBucketPolicy", "s3:PutBucketPolicy"],
         "Resource": [f"arn:aws:s3:::{bucket}"], "Condition": mfa}]}
    policy = iam.create_policy(PolicyName="keyward-self-service", Path="/keyward/", PolicyDocument=json.dumps(old))["Policy"]["Arn"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"}, "Action": "sts:AssumeRole", "Condition": mfa}]}
    iam.create_role(RoleName="keyward-enroller", Path="/keyward/", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="keyward-enroller", PolicyName="keyward-enroller", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": users}]}))
    out = {}
    for name, revoked in [("alice-old", False), ("alice-gone", True)]:
        made = make_user(name)
        iam.delete_user_policy(UserName=name, PolicyName="own-source-identity")
        tags = [{"Key": "keyward-owner", "Value": "alice"}, {"Key": "keyward-machine", "Value": name.split("-", 1)[1]},
                {"Key": "keyward-setup-complete", "Value": "2026-01-01T00:00:00Z"}]
        if revoked:
            tags.append({"Key": "keyward-revoked-at", "Value": "2026-02-01T00:00:00Z"})
            deny = {"Version": "2012-10-17", "Statement": [{"Sid": "KeywardRevokeOlderSessions", "Effect": "Deny", "Action": "*", "Resource": "*",
                    "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2026-02-01T00:00:00Z"}}}]}
            iam.put_user_policy(UserName=name, PolicyName="keyward-revoked-deny-all", PolicyDocument=json.dumps(deny))
        iam.tag_user(UserName=name, Tags=tags)
        iam.attach_user_policy(UserName=name, PolicyArn=policy)
        out[name] = made
    s3 = boto3.client("s3")
    doc = {"Version": "2012-10-17", "Statement": [
        {"Sid": "KeywardMachines", "Effect": "Allow", "Principal": {"AWS": [out["alice-old"]["user_arn"]]}, "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{bucket}/*"]},
        {"Sid": "KeywardDenyOthers", "Effect": "Deny", "NotPrincipal": {"AWS": [f"arn:aws:iam::{acct}:root", out["alice-old"]["user_arn"]]}, "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc))
    return out


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


def plant_audit_findings(account):
    """The misconfigurations keyward audit must find, each in its own place."""
    iam, s3, kms = boto3.client("iam"), boto3.client("s3"), boto3.client("kms")
    allow_all = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    adm = iam.create_policy(PolicyName="EverythingAllowed", PolicyDocument=allow_all)["Policy"]["Arn"]
    iam.create_user(UserName="ops-admin")
    iam.attach_user_policy(UserName="ops-admin", PolicyArn=adm)
    iam.create_access_key(UserName="ops-admin")
    iam.create_login_profile(UserName="ops-admin", Password="Correct-Horse-9-Battery!")
    iam.create_user(UserName="old-key")
    iam.create_access_key(UserName="old-key")
    iam.create_user(UserName="sneaky")
    me = iam.get_user(UserName="sneaky")["User"]["Arn"]
    iam.put_user_policy(UserName="sneaky", PolicyName="self-service", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:PutUserPolicy", "iam:GetUser"], "Resource": me}]}))
    iam.create_user(UserName="hopper")
    hopper = iam.get_user(UserName="hopper")["User"]["Arn"]
    iam.create_role(RoleName="power", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": hopper}, "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName="power", PolicyName="all", PolicyDocument=allow_all)
    iam.put_user_policy(UserName="hopper", PolicyName="hop", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{account}:role/power"}]}))
    iam.create_role(RoleName="old-trust", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ["AROAGHOSTROLE0000001", hopper]}, "Action": "sts:AssumeRole"}]}))
    s3.create_bucket(Bucket="public-data")
    s3.put_bucket_policy(Bucket="public-data", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "World", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::public-data/*"}]}))
    acl = s3.get_bucket_acl(Bucket="public-data")
    grants = acl["Grants"] + [{"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"}]
    s3.put_bucket_acl(Bucket="public-data", AccessControlPolicy={"Grants": grants, "Owner": acl["Owner"]})
    s3.create_bucket(Bucket="plain-data")
    s3.create_bucket(Bucket="shared-data")
    shared = {"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared-data/*"}
    ghost = {"Sid": "Ghost", "Effect": "Allow", "Principal": {"AWS": "AIDAGHOSTUSER0000001"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared-data/*"}
    s3.put_bucket_policy(Bucket="shared-data", Policy=json.dumps({"Version": "2012-10-17", "Statement": [shared, ghost]}))
    key = kms.create_key(Description="open key")["KeyMetadata"]
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Anyone", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]}))
    # Someone loosened keyward's deny-all by hand.
    arn = f"arn:aws:iam::{account}:policy/keyward/keyward-deny-all"
    iam.create_policy_version(PolicyArn=arn, SetAsDefault=True, PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}))
    return {"open_key": key["Arn"], "shared_statement": shared}


def harden_bucket(bucket):
    """What a careful admin does by hand: Block Public Access and default encryption."""
    s3 = boto3.client("s3")
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    return {}


def make_iam_reader():
    """A user that may read IAM and nothing else: S3 and KMS checks cannot run."""
    iam = boto3.client("iam")
    iam.create_user(UserName="iam-reader")
    iam.put_user_policy(UserName="iam-reader", PolicyName="read-iam", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*", "iam:GenerateCredentialReport", "sts:GetCallerIdentity"], "Resource": "*"}]}))
    k = iam.create_access_key(UserName="iam-reader")["AccessKey"]
    return {"access_key_id": k["AccessKeyId"], "secret_access_key": k["SecretAccessKey"]}


def make_machines(n, owner):
    """n registered-looking machines of `owner` in group dev, each with a key (bench)."""
    iam = boto3.client("iam")
    for i in range(n):
        name = f"{owner}-m{i:04d}"
        iam.create_user(UserName=name, Path="/keyward/", Tags=[
            {"Key": "keyward-owner", "Value": owner}, {"Key": "keyward-machine", "Value": f"m{i:04d}"},
            {"Key": "keyward-created-at", "Value": "2026-11-30T00:00:00Z"}, {"Key": "keyward-enrolled", "Value": "2026-11-30T00:00:00Z"}])
        iam.create_access_key(UserName=name)
        iam.add_user_to_group(GroupName="dev", UserName=name)
    return {"made": n}


def make_buckets(n):
    s3 = boto3.client("s3")
    for i in range(n):
        s3.create_bucket(Bucket=f"bench-bucket-{i:04d}")
    return {"made": n}


def bucket_policy(bucket):
    try:
        return json.loads(boto3.client("s3").get_bucket_policy(Bucket=bucket)["Policy"])
    except Exception:
        return None


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
    elif cmd == "make-roles":
        print(json.dumps(make_roles(sys.argv[2], *sys.argv[3:])))
    elif cmd == "make-attack-targets":
        print(json.dumps(make_attack_targets(sys.argv[2], sys.argv[3])))
    elif cmd == "plant-escalation":
        print(json.dumps(plant_escalation(sys.argv[2])))
    elif cmd == "make-old-account":
        print(json.dumps(make_old_account(sys.argv[2])))
    elif cmd == "plant-audit-findings":
        print(json.dumps(plant_audit_findings(sys.argv[2])))
    elif cmd == "make-machines":
        print(json.dumps(make_machines(int(sys.argv[2]), sys.argv[3])))
    elif cmd == "make-buckets":
        print(json.dumps(make_buckets(int(sys.argv[2]))))
    elif cmd == "make-iam-reader":
        print(json.dumps(make_iam_reader()))
    elif cmd == "harden-bucket":
        print(json.dumps(harden_bucket(sys.argv[2])))
    elif cmd == "bucket-policy":
        print(json.dumps(bucket_policy(sys.argv[2])))
    elif cmd == "delete-access-keys":
        iam = boto3.client("iam")
        for k in iam.list_access_keys(UserName=sys.argv[2])["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=sys.argv[2], AccessKeyId=k["AccessKeyId"])
        print("{}")
    elif cmd == "delete-user-policy":
        boto3.client("iam").delete_user_policy(UserName=sys.argv[2], PolicyName=sys.argv[3])
        print("{}")
    elif cmd == "managed-policy-exists":
        try:
            boto3.client("iam").get_policy(PolicyArn=sys.argv[2])
            print("true")
        except boto3.client("iam").exceptions.NoSuchEntityException:
            print("false")
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
    elif cmd == "make-power-group":
        # A group many accounts have: broad S3, KMS and role rights.
        iam = boto3.client("iam")
        iam.create_group(GroupName="power")
        doc = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:*", "kms:*", "sts:AssumeRole", "sts:SetSourceIdentity"], "Resource": "*"}]}
        iam.put_group_policy(GroupName="power", PolicyName="power", PolicyDocument=json.dumps(doc))
        iam.add_user_to_group(GroupName="power", UserName=sys.argv[2])
        print("{}")
    elif cmd == "group-reads-bucket":
        doc = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{sys.argv[3]}"},
            # An operators' group: wide IAM rights, roles to assume.
            {"Effect": "Allow", "Action": ["iam:*", "sts:AssumeRole"], "Resource": "*"}]}
        boto3.client("iam").put_group_policy(GroupName=sys.argv[2], PolicyName="reads", PolicyDocument=json.dumps(doc))
        print("{}")
    elif cmd == "lose-a-new-key":
        # A key IAM made whose secret nobody kept (a kill right after CreateAccessKey).
        boto3.client("iam").create_access_key(UserName=sys.argv[2])
        print("{}")
    elif cmd == "plant-expired-jit":
        # A grant of GROUP to MACHINE that ended in 2020, in keyward's shape.
        iam = boto3.client("iam")
        role = f"jit-{sys.argv[2]}"
        trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        trust["Statement"] = [s for s in trust["Statement"] if s.get("Effect") == "Allow"]
        user = f"arn:aws:iam::123456789012:user/keyward/{sys.argv[3]}"
        trust["Statement"].append({"Sid": "JitOpsForAliceOld", "Effect": "Allow", "Principal": {"AWS": user},
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}, "StringEquals": {"sts:SourceIdentity": sys.argv[3]},
                          "DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}})
        iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(trust))
        print("{}")
    elif cmd == "instance-profile":
        iam = boto3.client("iam")
        try:
            p = iam.get_instance_profile(InstanceProfileName=sys.argv[2])["InstanceProfile"]
            print(json.dumps({"exists": True, "roles": [r["RoleName"] for r in p["Roles"]]}))
        except iam.exceptions.NoSuchEntityException:
            print(json.dumps({"exists": False}))
    elif cmd == "key":
        kms = boto3.client("kms")
        try:
            m = kms.describe_key(KeyId=sys.argv[2])["KeyMetadata"]
            print(json.dumps({"exists": True, "arn": m["Arn"], "state": m["KeyState"]}))
        except kms.exceptions.NotFoundException:
            print(json.dumps({"exists": False}))
    elif cmd == "make-asymmetric-key":
        m = boto3.client("kms").create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
        print(json.dumps({"arn": m["Arn"]}))
    elif cmd == "group-members":
        iam = boto3.client("iam")
        try:
            print(json.dumps([u["UserName"] for u in iam.get_group(GroupName=sys.argv[2])["Users"]]))
        except iam.exceptions.NoSuchEntityException:
            print("null")
    elif cmd == "put-object":
        boto3.client("s3").put_object(Bucket=sys.argv[2], Key=sys.argv[3], Body=b"root's object")
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
