//! HS256 JWTs: the claims a Mesh token carries, verifying them, and signing them (for
//! tests, tools and admins minting tokens).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::domain::{Principal, Scope, TenantId};

/// The shortest HS256 secret accepted (RFC 7518: at least the hash's size).
pub const MIN_SECRET_LEN: usize = 32;

/// What a token must also satisfy besides its signature.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    /// The `iss` it must carry, when set.
    pub(crate) issuer: Option<String>,
    /// An `aud` it must carry (a string, or one of an array), when set.
    pub(crate) audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub(crate) leeway: i64,
}

/// An `aud` claim: one audience or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The claims a Mesh JWT carries.
#[derive(Debug, Deserialize)]
pub(crate) struct Claims {
    pub(crate) tenant_id: TenantId,
    #[serde(default)]
    pub(crate) scopes: Vec<Scope>,
    /// Roles (built-in or the tenant's own) besides the scopes.
    #[serde(default)]
    pub(crate) roles: Vec<String>,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
}

impl Claims {
    /// The caller the token stands for.
    pub(crate) fn into_principal(self) -> Principal {
        let subject = format!("jwt:{}:{}", self.tenant_id, self.sub.unwrap_or_default());
        let mut who = Principal::new(self.tenant_id, self.scopes, subject);
        who.roles = self.roles;
        who
    }
}

/// Verifies an HS256 JWT with `secret` under `rules`; the reason it is refused
/// otherwise.
pub(crate) fn verify(token: &str, secret: &[u8], rules: &Rules) -> Result<Claims, &'static str> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("a JWT has three parts");
    };
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| "a JWT part is not base64url")
    };
    let head: Header =
        serde_json::from_slice(&decode(header)?).map_err(|_| "unreadable JWT header")?;
    if head.alg != "HS256" {
        return Err("only HS256 JWTs are accepted");
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| "bad JWT secret")?;
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    mac.verify_slice(&decode(signature)?)
        .map_err(|_| "the JWT signature does not match")?;
    let claims: Claims = serde_json::from_slice(&decode(payload)?)
        .map_err(|_| "the JWT needs tenant_id, scopes and exp")?;
    let now = chrono::Utc::now().timestamp();
    if claims.exp.saturating_add(rules.leeway) <= now {
        return Err("the JWT has expired");
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf.saturating_sub(rules.leeway) > now)
    {
        return Err("the JWT is not valid yet");
    }
    if let Some(issuer) = &rules.issuer
        && claims.iss.as_ref() != Some(issuer)
    {
        return Err("the JWT's issuer (iss) is not the one configured");
    }
    if let Some(audience) = &rules.audience {
        let carried = match &claims.aud {
            Some(Audience::One(a)) => a == audience,
            Some(Audience::Many(all)) => all.contains(audience),
            None => false,
        };
        if !carried {
            return Err("the JWT is not for this audience (aud)");
        }
    }
    Ok(claims)
}

/// Signs HS256 claims (for tests, tools and admins minting tokens).
pub fn sign_jwt(claims: &serde_json::Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{signing_input}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwts_verify_only_with_the_right_secret_and_in_time() {
        let tenant = TenantId::new();
        let later = chrono::Utc::now().timestamp() + 60;
        let token = sign_jwt(
            &serde_json::json!({"tenant_id": tenant, "scopes": ["read"], "exp": later}),
            b"secret",
        );
        let rules = Rules::default();
        let claims = verify(&token, b"secret", &rules).unwrap();
        assert_eq!(claims.tenant_id, tenant);
        assert_eq!(claims.scopes, vec![Scope::Read]);
        // Roles ride in their own claim, beside the scopes.
        let with_roles = sign_jwt(
            &serde_json::json!({"tenant_id": tenant, "roles": ["operator", "gh"], "exp": later}),
            b"secret",
        );
        let who = verify(&with_roles, b"secret", &rules)
            .unwrap()
            .into_principal();
        assert_eq!(who.roles, vec!["operator".to_owned(), "gh".to_owned()]);
        assert!(who.scopes.is_empty());
        assert_eq!(
            verify(&token, b"other", &rules).unwrap_err(),
            "the JWT signature does not match"
        );
        let expired = sign_jwt(
            &serde_json::json!({"tenant_id": tenant, "scopes": [], "exp": 1}),
            b"secret",
        );
        assert_eq!(
            verify(&expired, b"secret", &rules).unwrap_err(),
            "the JWT has expired"
        );
        let no_tenant = sign_jwt(&serde_json::json!({"exp": later}), b"secret");
        assert!(verify(&no_tenant, b"secret", &rules).is_err());
        assert!(verify("a.b", b"secret", &rules).is_err());
        assert!(verify("!!.??.**", b"secret", &rules).is_err());
        // alg=none is refused.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(format!(r#"{{"tenant_id":"{tenant}","exp":{later}}}"#))
        );
        assert_eq!(
            verify(&none, b"secret", &rules).unwrap_err(),
            "only HS256 JWTs are accepted"
        );
    }

    /// Hardening issue, item 10: no leeway for clock skew, and `iss`/`aud` were never
    /// checked.
    #[test]
    fn hardening_10_leeway_issuer_and_audience() {
        let tenant = TenantId::new();
        let now = chrono::Utc::now().timestamp();
        let token = |claims: serde_json::Value| sign_jwt(&claims, b"secret");
        let skewed =
            token(serde_json::json!({"tenant_id": tenant, "exp": now - 10, "nbf": now + 10}));
        let strict = Rules::default();
        assert!(verify(&skewed, b"secret", &strict).is_err());
        let lenient = Rules {
            leeway: 60,
            ..Rules::default()
        };
        assert!(verify(&skewed, b"secret", &lenient).is_ok());
        let rules = Rules {
            issuer: Some("https://issuer.example".into()),
            audience: Some("mesh".into()),
            leeway: 0,
        };
        let later = now + 600;
        let good = token(serde_json::json!({"tenant_id": tenant, "exp": later,
            "iss": "https://issuer.example", "aud": ["other", "mesh"]}));
        assert!(verify(&good, b"secret", &rules).is_ok());
        let one = token(serde_json::json!({"tenant_id": tenant, "exp": later,
            "iss": "https://issuer.example", "aud": "mesh"}));
        assert!(verify(&one, b"secret", &rules).is_ok());
        let wrong_iss = token(serde_json::json!({"tenant_id": tenant, "exp": later,
            "iss": "https://evil.example", "aud": "mesh"}));
        assert!(
            verify(&wrong_iss, b"secret", &rules)
                .unwrap_err()
                .contains("iss")
        );
        let no_aud = token(serde_json::json!({"tenant_id": tenant, "exp": later,
            "iss": "https://issuer.example"}));
        assert!(
            verify(&no_aud, b"secret", &rules)
                .unwrap_err()
                .contains("aud")
        );
    }
}
