//! Key rotation as plan steps. The key store keeps the profile's key (what the daemon
//! uses) and, during a rotation, the new one under `<profile>.rotating`. The profile's
//! entry always holds a key STS accepts: the new key replaces it only once STS
//! accepts it, and the old key is deleted only after that. A re-run after a kill at
//! any point finds where it stopped: a key IAM holds that no store holds (its secret
//! was lost between CreateAccessKey and the store) is deleted and made again.

use anyhow::{bail, Context, Result};

use super::{Cx, FlowStep, Needs, State, StepId};
use crate::clients::Aws;
use crate::iam::{credentials, fail, key_suffix};
use crate::local::keychain;
use keyward_daemon::session::AccessKey;

#[derive(Debug, Clone)]
pub struct Rotation {
    pub profile: String,
    pub user: String,
}

#[derive(Debug, Clone)]
pub enum RotateStep {
    /// Keys IAM holds that no store holds, and a stored new key IAM no longer has.
    Tidy(Rotation),
    NewKey(Rotation),
    Accepted(Rotation),
    Switch(Rotation),
    DeleteOld(Rotation),
    DropStaging(Rotation),
}

pub fn staging(profile: &str) -> String {
    format!("{profile}.rotating")
}

/// What the stores and IAM hold now.
struct Now {
    main: Option<String>,
    staging: Option<String>,
    iam: Vec<String>,
}

async fn look(aws: &Aws, r: &Rotation) -> Result<Now> {
    Ok(Now {
        main: keychain::stored_key_id(&r.profile)?,
        staging: keychain::stored_key_id(&staging(&r.profile))?,
        iam: credentials::access_keys(aws, &r.user)
            .await?
            .into_iter()
            .map(|k| k.id)
            .collect(),
    })
}

impl Now {
    fn orphans(&self) -> Vec<String> {
        self.iam
            .iter()
            .filter(|k| Some(*k) != self.main.as_ref() && Some(*k) != self.staging.as_ref())
            .cloned()
            .collect()
    }

    fn staging_lost(&self) -> bool {
        self.staging.as_ref().is_some_and(|s| !self.iam.contains(s))
    }
}

impl RotateStep {
    fn rotation(&self) -> &Rotation {
        match self {
            RotateStep::Tidy(r)
            | RotateStep::NewKey(r)
            | RotateStep::Accepted(r)
            | RotateStep::Switch(r)
            | RotateStep::DeleteOld(r)
            | RotateStep::DropStaging(r) => r,
        }
    }
}

impl FlowStep for RotateStep {
    fn id(&self) -> StepId {
        match self {
            RotateStep::Tidy(_) => StepId::RotateTidy,
            RotateStep::NewKey(_) => StepId::RotateNewKey,
            RotateStep::Accepted(_) => StepId::RotateAccepted,
            RotateStep::Switch(_) => StepId::RotateSwitch,
            RotateStep::DeleteOld(_) => StepId::RotateDeleteOld,
            RotateStep::DropStaging(_) => StepId::RotateDropStaging,
        }
    }

    fn needs(&self) -> Needs {
        match self {
            RotateStep::Switch(_) | RotateStep::DropStaging(_) => Needs::Local,
            _ => Needs::Machine,
        }
    }

    fn label(&self) -> String {
        let r = self.rotation();
        match self {
            RotateStep::Tidy(_) => format!("{}: no stray access key", r.user),
            RotateStep::NewKey(_) => {
                format!("{}: a new access key, straight into the key store", r.user)
            }
            RotateStep::Accepted(_) => "STS accepts the new key".into(),
            RotateStep::Switch(_) => format!("profile `{}` uses the new key", r.profile),
            RotateStep::DeleteOld(_) => format!("{}: delete the old access key", r.user),
            RotateStep::DropStaging(_) => "the key store holds one key".into(),
        }
    }

    async fn check(&self, cx: &Cx) -> Result<State> {
        let r = self.rotation();
        let aws = cx.aws(Needs::Machine)?;
        let now = look(aws, r).await?;
        let todo = |s: String| Ok(State::ToDo(s));
        let done = |s: &str| Ok(State::Done(s.into()));
        match self {
            RotateStep::Tidy(_) => {
                if now.main.as_ref().is_some_and(|m| !now.iam.contains(m))
                    && now.staging.as_ref().is_none_or(|s| !now.iam.contains(s))
                {
                    bail!("IAM no longer holds this computer's key: it was revoked or deleted; see `keyward doctor`");
                }
                let stray: Vec<String> = now.orphans().iter().map(|k| key_suffix(k)).collect();
                if stray.is_empty() && !now.staging_lost() {
                    done("none")
                } else {
                    todo(format!(
                        "delete {}",
                        if stray.is_empty() {
                            "the lost staged key".into()
                        } else {
                            stray.join(", ")
                        }
                    ))
                }
            }
            RotateStep::NewKey(_) => match &now.staging {
                Some(s) if now.iam.contains(s) => done("staged"),
                _ => todo("create it".into()),
            },
            RotateStep::Accepted(_) => match &now.staging {
                Some(s) if now.main.as_ref() == Some(s) => done("in use"),
                _ if crate::plan::local::sts_accepts(&staging(&r.profile)).await? => {
                    done("accepted")
                }
                _ => todo("wait until STS accepts it".into()),
            },
            RotateStep::Switch(_) => match &now.staging {
                Some(s) if now.main.as_ref() != Some(s) => {
                    todo(format!("switch to …{}", key_suffix(s)))
                }
                _ => done("in use"),
            },
            RotateStep::DeleteOld(_) => {
                let old: Vec<String> = now
                    .iam
                    .iter()
                    .filter(|k| Some(*k) != now.main.as_ref())
                    .map(|k| key_suffix(k))
                    .collect();
                if old.is_empty() {
                    done("only the new key is left")
                } else {
                    todo(format!("delete {}", old.join(", ")))
                }
            }
            RotateStep::DropStaging(_) => match &now.staging {
                Some(_) => todo("remove the staged copy".into()),
                None => done("one key"),
            },
        }
    }

    async fn apply(&self, cx: &Cx) -> Result<String> {
        let r = self.rotation();
        let aws = cx.aws(Needs::Machine)?;
        let now = look(aws, r).await?;
        match self {
            RotateStep::Tidy(_) => {
                for k in now.orphans() {
                    delete_key(aws, &r.user, &k).await?;
                }
                if now.staging_lost() {
                    keychain::remove(&staging(&r.profile))?;
                }
                Ok("tidied".into())
            }
            RotateStep::NewKey(_) => new_key(aws, r).await,
            RotateStep::Accepted(_) => crate::plan::local::await_key(&staging(&r.profile)).await,
            RotateStep::Switch(_) => {
                let key = keychain::read_key(&staging(&r.profile))?
                    .context("the staged key is gone; run `keyward rotate` again")?;
                keychain::store_and_verify(&r.profile, &key).map_err(anyhow::Error::msg)?;
                Ok(format!("now …{}", key_suffix(&key.id)))
            }
            RotateStep::DeleteOld(_) => {
                let Some(main) = now.main.clone().filter(|m| now.iam.contains(m)) else {
                    bail!("IAM does not hold the key stored for `{}`; nothing was deleted. See `keyward doctor`", r.profile);
                };
                for k in now.iam.iter().filter(|k| **k != main) {
                    delete_key(aws, &r.user, k).await?;
                }
                Ok("deleted".into())
            }
            RotateStep::DropStaging(_) => {
                keychain::remove(&staging(&r.profile))?;
                Ok("removed".into())
            }
        }
    }
}

async fn new_key(aws: &Aws, r: &Rotation) -> Result<String> {
    let out = aws
        .iam
        .create_access_key()
        .user_name(&r.user)
        .send()
        .await
        .map_err(|e| fail("iam:CreateAccessKey", &e))?;
    let k = out
        .access_key()
        .context("CreateAccessKey answered without a key")?;
    let key = AccessKey::new(k.access_key_id(), k.secret_access_key().to_owned().into());
    keychain::store_and_verify(&staging(&r.profile), &key).map_err(|e| {
        anyhow::anyhow!("the new key could not be stored ({e}); `keyward rotate` again deletes it and starts over")
    })?;
    Ok(format!("…{} staged", key_suffix(&key.id)))
}

async fn delete_key(aws: &Aws, user: &str, id: &str) -> Result<()> {
    aws.iam
        .delete_access_key()
        .user_name(user)
        .access_key_id(id)
        .send()
        .await
        .map_err(|e| fail("iam:DeleteAccessKey", &e))?;
    Ok(())
}
