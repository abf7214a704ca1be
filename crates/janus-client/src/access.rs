//! The access API under `/v1/auth/` (see `docs/auth.md`): who the caller
//! is, and, for a global admin, users, grants and API tokens.

use hyper::Method;
use janus_api::auth::{CreateToken, CreateUser, Grant, IssuedToken, LoginRequest, SetPassword, Token, User, WhoAmI};

use crate::path::{Query, segment};
use crate::{Body, Client, Error, Request};

impl Client {
    /// `POST /v1/auth/login`: a login token for a user's password.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (401 for a wrong name or
    /// password, 429 while locked out).
    pub async fn login(&self, username: &str, password: &str) -> Result<IssuedToken, Error> {
        let body = LoginRequest { username: username.to_owned(), password: password.to_owned() };
        self.typed(Request::new(Method::POST, "/v1/auth/login").body(Body::json(&body)?)).await
    }

    /// `GET /v1/auth/whoami`: the caller's user, token id and grants.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (401 without a valid token).
    pub async fn whoami(&self) -> Result<WhoAmI, Error> {
        self.typed(Request::new(Method::GET, "/v1/auth/whoami")).await
    }

    /// `GET /v1/auth/users`.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (403 unless a global admin).
    pub async fn list_users(&self) -> Result<Vec<User>, Error> {
        self.typed(Request::new(Method::GET, "/v1/auth/users")).await
    }

    /// `POST /v1/auth/users`: a user, with a password to log in with or
    /// none (it then only ever uses API tokens).
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (409 when it exists).
    pub async fn create_user(&self, name: &str, password: Option<&str>) -> Result<User, Error> {
        let body = CreateUser { name: name.to_owned(), password: password.map(str::to_owned) };
        self.typed(Request::new(Method::POST, "/v1/auth/users").body(Body::json(&body)?)).await
    }

    /// `DELETE /v1/auth/users/{user}`, with its tokens and grants.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (404, or 409 for the last global admin).
    pub async fn delete_user(&self, name: &str) -> Result<(), Error> {
        let path = format!("/v1/auth/users/{}", segment(name));
        self.send(Request::new(Method::DELETE, path)).await?.error_for_status().map(drop)
    }

    /// `PUT /v1/auth/users/{user}/password`.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (400 for a password out of bounds).
    pub async fn set_password(&self, name: &str, password: &str) -> Result<User, Error> {
        let path = format!("/v1/auth/users/{}/password", segment(name));
        let body = SetPassword { password: password.to_owned() };
        self.typed(Request::new(Method::PUT, path).body(Body::json(&body)?)).await
    }

    /// `PUT /v1/auth/users/{user}/grants`: `role` (`read`, `write` or
    /// `admin`) on `namespace`, or everywhere with `*`.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (400 for an unknown role, 404).
    pub async fn grant(&self, user: &str, namespace: &str, role: &str) -> Result<User, Error> {
        let path = format!("/v1/auth/users/{}/grants", segment(user));
        let body = Grant { namespace: namespace.to_owned(), role: role.to_owned() };
        self.typed(Request::new(Method::PUT, path).body(Body::json(&body)?)).await
    }

    /// `DELETE /v1/auth/users/{user}/grants/{namespace}` (`*`: the global grant).
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (404, or 409 for the last global admin).
    pub async fn revoke_grant(&self, user: &str, namespace: &str) -> Result<User, Error> {
        let path = format!("/v1/auth/users/{}/grants/{}", segment(user), segment(namespace));
        self.typed(Request::new(Method::DELETE, path)).await
    }

    /// `GET /v1/auth/tokens[?user=]`: ids, kinds and expiry, never a secret.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`].
    pub async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<Token>, Error> {
        let mut query = Query::default();
        query.push_some("user", user);
        self.typed(Request::new(Method::GET, format!("/v1/auth/tokens{}", query.as_str()))).await
    }

    /// `POST /v1/auth/tokens`: an API token of `user` (the caller's own when
    /// `None`), lasting `ttl_seconds` or until revoked; the only time its
    /// text is shown.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`].
    pub async fn create_token(&self, token: &CreateToken) -> Result<IssuedToken, Error> {
        self.typed(Request::new(Method::POST, "/v1/auth/tokens").body(Body::json(token)?)).await
    }

    /// `DELETE /v1/auth/tokens/{id}`: refused cluster-wide once committed.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Refused`] (404).
    pub async fn revoke_token(&self, id: &str) -> Result<(), Error> {
        let path = format!("/v1/auth/tokens/{}", segment(id));
        self.send(Request::new(Method::DELETE, path)).await?.error_for_status().map(drop)
    }
}
