//! Credentials of machine users: access keys and virtual MFA devices. Listing a user
//! that does not exist (yet) finds nothing.

use anyhow::{Context, Result};
use aws_sdk_iam::types::{AssignmentStatusType, StatusType};
use zeroize::Zeroizing;

use super::{fail, found, gone_ok};
use crate::clients::Aws;

pub async fn mfa_devices(aws: &Aws, user: &str) -> Result<Vec<String>> {
    let listed = aws.iam.list_mfa_devices().user_name(user).send().await;
    let Some(out) = found(listed, "iam:ListMFADevices")? else {
        return Ok(Vec::new());
    };
    Ok(out
        .mfa_devices()
        .iter()
        .map(|d| d.serial_number().to_owned())
        .collect())
}

/// Creates a virtual MFA device and returns its serial and base32 seed.
pub async fn create_virtual_mfa(aws: &Aws, name: &str) -> Result<(String, Zeroizing<String>)> {
    let out = aws
        .iam
        .create_virtual_mfa_device()
        .virtual_mfa_device_name(name)
        .send()
        .await
        .map_err(|e| fail("iam:CreateVirtualMFADevice", &e))?;
    let dev = out
        .virtual_mfa_device()
        .context("no device in the answer")?;
    let seed = dev
        .base32_string_seed()
        .context("the answer carries no Base32StringSeed")?;
    let seed = Zeroizing::new(String::from_utf8_lossy(seed.as_ref()).into_owned());
    Ok((dev.serial_number().to_owned(), seed))
}

/// Whether an unassigned device named `name` exists (left by an interrupted setup).
pub async fn stray_virtual_mfa(aws: &Aws, account: &str, name: &str) -> Result<bool> {
    let serial = format!("arn:aws:iam::{account}:mfa/{name}");
    let mut marker = None;
    loop {
        let out = aws
            .iam
            .list_virtual_mfa_devices()
            .assignment_status(AssignmentStatusType::Unassigned)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| fail("iam:ListVirtualMFADevices", &e))?;
        if out
            .virtual_mfa_devices()
            .iter()
            .any(|d| d.serial_number() == serial)
        {
            return Ok(true);
        }
        if !out.is_truncated() {
            return Ok(false);
        }
        marker = out.marker().map(str::to_owned);
    }
}

/// Deletes an unassigned device named `name`; `Ok(true)` when there was one.
pub async fn delete_stray_virtual_mfa(aws: &Aws, account: &str, name: &str) -> Result<bool> {
    if !stray_virtual_mfa(aws, account, name).await? {
        return Ok(false);
    }
    let serial = format!("arn:aws:iam::{account}:mfa/{name}");
    let delete = aws.iam.delete_virtual_mfa_device().serial_number(&serial);
    gone_ok(delete.send().await, "iam:DeleteVirtualMFADevice")
}

pub async fn enable_mfa(aws: &Aws, user: &str, serial: &str, c1: &str, c2: &str) -> Result<()> {
    aws.iam
        .enable_mfa_device()
        .user_name(user)
        .serial_number(serial)
        .authentication_code1(c1)
        .authentication_code2(c2)
        .send()
        .await
        .map_err(|e| fail("iam:EnableMFADevice", &e))?;
    Ok(())
}

/// Deactivates and deletes a user's device; gone already is fine.
pub async fn remove_mfa(aws: &Aws, user: &str, serial: &str) -> Result<()> {
    let deactivate = aws
        .iam
        .deactivate_mfa_device()
        .user_name(user)
        .serial_number(serial);
    gone_ok(deactivate.send().await, "iam:DeactivateMFADevice")?;
    let delete = aws.iam.delete_virtual_mfa_device().serial_number(serial);
    gone_ok(delete.send().await, "iam:DeleteVirtualMFADevice")?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: String,
    pub created: Option<std::time::SystemTime>,
}

pub async fn access_keys(aws: &Aws, user: &str) -> Result<Vec<KeyInfo>> {
    let listed = aws.iam.list_access_keys().user_name(user).send().await;
    let Some(out) = found(listed, "iam:ListAccessKeys")? else {
        return Ok(Vec::new());
    };
    Ok(out
        .access_key_metadata()
        .iter()
        .map(|k| KeyInfo {
            id: k.access_key_id().unwrap_or_default().to_owned(),
            created: k
                .create_date()
                .and_then(|d| std::time::SystemTime::try_from(*d).ok()),
        })
        .collect())
}

pub async fn create_access_key(aws: &Aws, user: &str) -> Result<(String, Zeroizing<String>)> {
    let out = aws
        .iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .map_err(|e| fail("iam:CreateAccessKey", &e))?;
    let k = out.access_key().context("no key in the answer")?;
    Ok((
        k.access_key_id().to_owned(),
        Zeroizing::new(k.secret_access_key().to_owned()),
    ))
}

pub async fn deactivate_access_key(aws: &Aws, user: &str, id: &str) -> Result<()> {
    let update = aws
        .iam
        .update_access_key()
        .user_name(user)
        .access_key_id(id)
        .status(StatusType::Inactive);
    gone_ok(update.send().await, "iam:UpdateAccessKey")?;
    Ok(())
}

pub async fn delete_access_key(aws: &Aws, user: &str, id: &str) -> Result<()> {
    let delete = aws
        .iam
        .delete_access_key()
        .user_name(user)
        .access_key_id(id);
    gone_ok(delete.send().await, "iam:DeleteAccessKey")?;
    Ok(())
}

/// When a key was last used, to the second (`None`: never, or not readable).
pub async fn key_last_used(aws: &Aws, id: &str) -> Option<String> {
    let out = aws
        .iam
        .get_access_key_last_used()
        .access_key_id(id)
        .send()
        .await
        .ok()?;
    let t = out.access_key_last_used()?.last_used_date()?;
    let secs = std::time::SystemTime::try_from(*t).ok()?;
    Some(humantime::format_rfc3339_seconds(secs).to_string())
}
