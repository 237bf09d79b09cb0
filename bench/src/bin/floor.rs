//! The floor: the cheapest possible credential_process, a binary printing fixed JSON.

#![forbid(unsafe_code)]

fn main() {
    println!(
        r#"{{"Version":1,"AccessKeyId":"ASIAFLOOR","SecretAccessKey":"x","SessionToken":"y","Expiration":"2099-01-01T00:00:00Z"}}"#
    );
}
