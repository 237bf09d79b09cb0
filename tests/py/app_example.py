"""The README's boto3 example for an app profile, run as written (plus argv).

usage: app_example.py PROFILE BUCKET KEY_ARN
"""
import sys

import boto3

profile, bucket, key_arn = sys.argv[1:4]

# --- README: app example ---
s3 = boto3.Session(profile_name=profile).client("s3")
s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello",
              ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)
print(s3.get_object(Bucket=bucket, Key="hello.txt")["Body"].read().decode())
# --- end ---
