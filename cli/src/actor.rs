//! Who is acting, and with which AWS identities: this computer's MFA session, the
//! admin role when this computer is a designated admin computer, or the account's
//! bootstrap admin credentials (`--admin-profile`, or the standard chain).

use anyhow::{bail, Context, Result};
use clap::Args;
use keyward_daemon::config::Config;

use crate::clients::Aws;
use crate::iam::documents::Arns;
use crate::iam::users::{self, UserInfo};
use crate::local::profiles;
use crate::plan::Cx;

#[derive(Args, Clone, Default)]
pub struct Who {
    /// This computer's keyward profile (default: the only base profile)
    #[arg(long)]
    pub profile: Option<String>,
    /// Act as the account's bootstrap admin (credentials from --admin-profile or the
    /// environment) instead of as this computer
    #[arg(long)]
    pub admin: bool,
    /// AWS profile with the account's admin credentials (implies --admin)
    #[arg(long, value_name = "P")]
    pub admin_profile: Option<String>,
    /// Act only as this computer, even on an admin computer
    #[arg(long, conflicts_with_all = ["admin", "admin_profile"])]
    pub no_admin: bool,
}

impl Who {
    pub fn bootstrap(&self) -> bool {
        self.admin || self.admin_profile.is_some()
    }
}

/// The identities of one command run.
pub struct Actor {
    pub cx: Cx,
    /// This computer's machine user, when acting as this computer.
    pub me: Option<UserInfo>,
    /// This computer's base profile, when acting as this computer.
    pub profile: Option<String>,
}

impl Actor {
    pub fn owner(&self) -> Option<&str> {
        self.me.as_ref().and_then(UserInfo::owner)
    }

    pub fn is_admin(&self) -> bool {
        self.cx.admin.is_some()
    }

    /// The identity that reads the most: the admin if there is one, else this
    /// computer (whose reads may be refused; plans then say what is unknown).
    pub fn reader(&self) -> &Aws {
        self.cx
            .admin
            .as_ref()
            .or(self.cx.machine.as_ref())
            .expect("an actor has an identity")
    }
}

/// The bootstrap admin's clients, or a clear error when there are no credentials.
pub async fn bootstrap_aws(admin_profile: Option<&str>, region: Option<&str>) -> Result<Aws> {
    let aws = Aws::admin(admin_profile, region).await?;
    aws.whoami().await.context(
        "the account's admin credentials do not work; pass --admin-profile P, or set AWS_PROFILE",
    )?;
    Ok(aws)
}

/// A plan context with the bootstrap admin in every role.
pub async fn as_bootstrap(
    who: &Who,
    region: Option<&str>,
    yes: bool,
    quiet: bool,
) -> Result<Actor> {
    let aws = bootstrap_aws(who.admin_profile.as_deref(), region).await?;
    let (account, arn) = aws.whoami().await?;
    let cx = Cx {
        arns: Arns::new(&account),
        machine: None,
        admin: Some(aws.clone()),
        bootstrap: true,
        registrar: Some(aws),
        yes,
        quiet,
        actor: arn,
        mfa_process: None,
        clock: keyward_daemon::clock::Clock::system(),
    };
    Ok(Actor {
        cx,
        me: None,
        profile: None,
    })
}

/// Acts as this computer, plus its admin role when it is a designated admin computer.
pub async fn as_machine(who: &Who, yes: bool, quiet: bool) -> Result<Actor> {
    if who.bootstrap() {
        return as_bootstrap(who, None, yes, quiet).await;
    }
    let profile = match &who.profile {
        Some(p) => p.clone(),
        None => match implicit_admin()? {
            Some(admin) => return as_bootstrap(&admin, None, yes, quiet).await,
            None => profiles::default_profile()?,
        },
    };
    let machine = Aws::from_keyward_profile(&profile, None).await?;
    let (account, arn) = machine.whoami().await?;
    let name = arn.rsplit('/').next().unwrap_or_default().to_owned();
    let me = users::get_user(&machine, &name)
        .await?
        .with_context(|| format!("{arn} is not a keyward machine user; use --admin-profile with the account's admin credentials"))?;
    if !me.is_machine() {
        bail!("{arn} is not a keyward machine user (no keyward-owner tag under /keyward/); register this computer with `keyward setup`");
    }
    let admin = if who.no_admin {
        None
    } else {
        admin_session(&profile).await
    };
    let cx = Cx {
        arns: Arns::new(&account),
        machine: Some(machine),
        admin,
        bootstrap: false,
        registrar: None,
        yes,
        quiet,
        actor: me.name.clone(),
        mfa_process: None,
        clock: keyward_daemon::clock::Clock::system(),
    };
    Ok(Actor {
        cx,
        me: Some(me),
        profile: Some(profile),
    })
}

/// With no `--profile`: an `AWS_PROFILE` that is not a keyward profile, or admin keys in
/// the environment on a computer with no keyward profile, mean the bootstrap admin.
fn implicit_admin() -> Result<Option<Who>> {
    let cfg = Config::load(&profiles::config_path()?)?;
    if let Some(p) = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()) {
        if !cfg.profiles.contains_key(&p) {
            return Ok(Some(Who {
                admin_profile: Some(p),
                ..Who::default()
            }));
        }
        return Ok(None);
    }
    let has_base = cfg.profiles.values().any(|p| p.role_arn.is_none());
    if has_base {
        return Ok(None);
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        return Ok(Some(Who {
            admin: true,
            ..Who::default()
        }));
    }
    bail!("no AWS credentials found; use `--admin-profile P` or `AWS_PROFILE` with the account's admin credentials (this computer has no keyward profile yet; `keyward setup` registers it)")
}

/// The admin role's session through keywardd, when this computer has an admin profile
/// and AWS still lets it assume the role.
async fn admin_session(base: &str) -> Option<Aws> {
    let name = profiles::admin_profile_name(base);
    let cfg = Config::load(&profiles::config_path().ok()?).ok()?;
    cfg.profiles.get(&name)?;
    match Aws::from_keyward_profile(&name, None).await {
        Ok(aws) => Some(aws),
        Err(e) => {
            crate::ui::note(&format!("acting without the admin role: {e:#}"));
            None
        }
    }
}
