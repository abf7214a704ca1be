use super::*;
use crate::token::IssuedToken;

fn name(text: &str) -> UserName {
    UserName::parse(text).expect("valid name")
}

fn ns(id: &str) -> Scope {
    Scope::Namespace(id.to_owned())
}

fn minted(seed: u8) -> IssuedToken {
    IssuedToken::mint(std::array::from_fn(|i| seed ^ u8::try_from(i).unwrap_or(0).wrapping_mul(17)))
}

fn create(state: &mut AuthState, user: &str) {
    state.apply(AuthCommand::CreateUser { name: name(user), password: None, at_unix_ms: 1 }).expect("created");
}

fn issue(state: &mut AuthState, user: &str, seed: u8, at: u64, expires: Option<u64>) -> IssuedToken {
    let token = minted(seed);
    state
        .apply(AuthCommand::IssueToken {
            id: token.id.clone(),
            hash: token.hash.clone(),
            user: name(user),
            kind: TokenKind::Login,
            at_unix_ms: at,
            expires_unix_ms: expires,
        })
        .expect("issued");
    token
}

fn grant(state: &mut AuthState, user: &str, scope: Scope, role: Role) {
    state.apply(AuthCommand::Grant { user: name(user), scope, role }).expect("granted");
}

#[test]
fn a_global_admin_may_do_anything_anywhere() {
    let mut state = AuthState::default();
    assert!(!state.has_global_admin());
    create(&mut state, "admin");
    grant(&mut state, "admin", Scope::Global, Role::Admin);
    assert!(state.has_global_admin());
    let token = issue(&mut state, "admin", 1, 10, None);
    let principal = state.authenticate(token.text(), 20).expect("authenticated");
    assert_eq!((principal.user.as_str(), principal.token.as_ref()), ("admin", Some(&token.id)));
    for scope in [Scope::Global, ns("public"), ns("team-b")] {
        assert!(state.authorize(&principal.user, Role::Admin, &scope).is_ok(), "{scope}");
    }
}

#[test]
fn a_namespace_grant_holds_in_that_namespace_only_and_up_to_its_role() {
    let mut state = AuthState::default();
    create(&mut state, "team-a");
    grant(&mut state, "team-a", ns("a"), Role::Write);
    let user = name("team-a");
    assert!(state.authorize(&user, Role::Read, &ns("a")).is_ok());
    assert!(state.authorize(&user, Role::Write, &ns("a")).is_ok());
    let refused = state.authorize(&user, Role::Admin, &ns("a")).expect_err("admin is more than write");
    assert_eq!(refused.to_string(), "user team-a may not admin in namespace a: it needs the admin role there");
    assert!(!refused.is_unauthenticated(), "a known user lacking a role is 403, not 401");
    assert!(state.authorize(&user, Role::Read, &ns("b")).is_err(), "another namespace");
    assert!(state.authorize(&user, Role::Read, &Scope::Global).is_err(), "a namespace grant is not global");
    // A global read grant reads every namespace but writes none.
    grant(&mut state, "team-a", Scope::Global, Role::Read);
    assert!(state.authorize(&user, Role::Read, &ns("b")).is_ok());
    assert!(state.authorize(&user, Role::Write, &ns("b")).is_err());
}

#[test]
fn expired_revoked_forged_and_orphaned_tokens_are_refused() {
    let mut state = AuthState::default();
    create(&mut state, "ci");
    let expiring = issue(&mut state, "ci", 1, 100, Some(200));
    assert!(state.authenticate(expiring.text(), 199).is_ok());
    assert_eq!(state.authenticate(expiring.text(), 200), Err(AuthError::Expired));

    let revoked = issue(&mut state, "ci", 2, 100, None);
    state.apply(AuthCommand::RevokeToken { id: revoked.id.clone() }).expect("revoked");
    assert_eq!(state.authenticate(revoked.text(), 150), Err(AuthError::UnknownToken));

    // The right id with another token's secret.
    let kept = issue(&mut state, "ci", 3, 100, None);
    let other = minted(4);
    let forged = format!("jns_{}_{}", kept.id, &other.text()[21..]);
    assert_eq!(state.authenticate(&forged, 150), Err(AuthError::UnknownToken));
    assert_eq!(state.authenticate("jns_nope", 150), Err(AuthError::MalformedToken));
    assert!(state.authenticate("jns_nope", 150).expect_err("malformed").is_unauthenticated());

    state.apply(AuthCommand::DeleteUser { name: name("ci") }).expect("deleted");
    assert_eq!(state.authenticate(kept.text(), 150), Err(AuthError::UnknownToken), "a deleted user's tokens go");
    assert!(state.tokens(None).is_empty());
}

#[test]
fn a_revoked_grant_holds_for_tokens_already_issued() {
    let mut state = AuthState::default();
    create(&mut state, "svc");
    grant(&mut state, "svc", ns("a"), Role::Write);
    let token = issue(&mut state, "svc", 1, 1, None);
    let principal = state.authenticate(token.text(), 2).expect("authenticated");
    assert!(state.authorize(&principal.user, Role::Write, &ns("a")).is_ok());
    state.apply(AuthCommand::RevokeGrant { user: name("svc"), scope: ns("a") }).expect("revoked");
    assert!(state.authorize(&principal.user, Role::Read, &ns("a")).is_err());
    assert!(state.user(&name("svc")).expect("exists").grants.is_empty());
}

#[test]
fn the_last_global_admin_stays() {
    let mut state = AuthState::default();
    create(&mut state, "admin");
    grant(&mut state, "admin", Scope::Global, Role::Admin);
    let delete = AuthCommand::DeleteUser { name: name("admin") };
    assert!(state.check(&delete).expect_err("last admin").to_string().contains("last global admin"));
    let demote = AuthCommand::RevokeGrant { user: name("admin"), scope: Scope::Global };
    assert!(state.apply(demote.clone()).is_err());
    create(&mut state, "second");
    grant(&mut state, "second", Scope::Global, Role::Admin);
    assert!(state.apply(demote).is_ok(), "with another admin the grant can go");
    assert!(state.apply(delete).is_ok());
    assert!(state.has_global_admin());
}

#[test]
fn refusals_are_decided_alike_by_check_and_apply_and_change_nothing() {
    let mut state = AuthState::default();
    create(&mut state, "a");
    let token = issue(&mut state, "a", 1, 1, None);
    let before = state.clone();
    let refused = [
        AuthCommand::CreateUser { name: name("a"), password: None, at_unix_ms: 2 },
        AuthCommand::DeleteUser { name: name("ghost") },
        AuthCommand::Grant { user: name("ghost"), scope: Scope::Global, role: Role::Read },
        AuthCommand::RevokeToken { id: minted(9).id },
        AuthCommand::IssueToken {
            id: token.id.clone(),
            hash: token.hash.clone(),
            user: name("a"),
            kind: TokenKind::Login,
            at_unix_ms: 2,
            expires_unix_ms: None,
        },
        AuthCommand::IssueToken {
            id: minted(8).id,
            hash: minted(8).hash,
            user: name("a"),
            kind: TokenKind::Api { name: String::new() },
            at_unix_ms: 2,
            expires_unix_ms: None,
        },
    ];
    for command in refused {
        let checked = state.check(&command).expect_err("refused by check");
        assert_eq!(state.apply(command).expect_err("refused by apply"), checked);
        assert_eq!(state, before, "a refusal changes nothing");
    }
}

#[test]
fn a_user_holds_a_bounded_number_of_live_tokens_and_expired_ones_are_dropped() {
    let mut state = AuthState::default();
    create(&mut state, "busy");
    for n in 0..MAX_TOKENS_PER_USER {
        let token = IssuedToken::mint(std::array::from_fn(|i| {
            if i < 8 { u8::try_from((n >> (8 * (i % 2))) & 0xff).unwrap_or(0) } else { 1 }
        }));
        state
            .apply(AuthCommand::IssueToken {
                id: token.id,
                hash: token.hash,
                user: name("busy"),
                kind: TokenKind::Login,
                at_unix_ms: 10,
                expires_unix_ms: Some(100),
            })
            .expect("under the cap");
    }
    let next = minted(200);
    let command = |at| AuthCommand::IssueToken {
        id: next.id.clone(),
        hash: next.hash.clone(),
        user: name("busy"),
        kind: TokenKind::Login,
        at_unix_ms: at,
        expires_unix_ms: None,
    };
    assert!(matches!(state.apply(command(50)), Err(AuthError::Limit(_))));
    // Once they have expired, a new one is accepted and they are dropped.
    state.apply(command(100)).expect("the expired ones no longer count");
    assert_eq!(state.tokens(Some(&name("busy"))).len(), 1);
}

#[test]
fn every_node_applying_the_same_log_agrees_also_through_a_snapshot() {
    let log = {
        let mut commands = Vec::new();
        for (n, user) in ["admin", "team-a", "team-b"].into_iter().enumerate() {
            commands.push(AuthCommand::CreateUser { name: name(user), password: None, at_unix_ms: n as u64 });
        }
        commands.push(AuthCommand::Grant { user: name("admin"), scope: Scope::Global, role: Role::Admin });
        commands.push(AuthCommand::Grant { user: name("team-a"), scope: ns("a"), role: Role::Admin });
        for seed in 1..6u8 {
            let token = minted(seed);
            commands.push(AuthCommand::IssueToken {
                id: token.id,
                hash: token.hash,
                user: name(if seed % 2 == 0 { "team-a" } else { "team-b" }),
                kind: TokenKind::Api { name: format!("t{seed}") },
                at_unix_ms: u64::from(seed) * 10,
                expires_unix_ms: Some(u64::from(seed) * 10 + 25),
            });
        }
        commands.push(AuthCommand::DeleteUser { name: name("team-b") });
        commands.push(AuthCommand::DeleteUser { name: name("admin") }); // refused: the last admin
        commands.push(AuthCommand::RevokeGrant { user: name("team-a"), scope: ns("a") });
        commands
    };
    let mut straight = AuthState::default();
    let outcomes: Vec<_> = log.iter().map(|c| straight.apply(c.clone())).collect();
    for cut in 0..=log.len() {
        let mut first = AuthState::default();
        let mut replayed: Vec<_> = log[..cut].iter().map(|c| first.apply(c.clone())).collect();
        let snapshot = postcard::to_allocvec(&first).expect("encoded");
        let mut restored: AuthState = postcard::from_bytes(&snapshot).expect("decoded");
        replayed.extend(log[cut..].iter().map(|c| restored.apply(c.clone())));
        assert_eq!(restored, straight, "cut at {cut}");
        assert_eq!(replayed, outcomes, "cut at {cut}");
    }
}

#[test]
fn admit_decides_as_authenticate_and_authorize_do() {
    let mut state = AuthState::default();
    create(&mut state, "team-a");
    grant(&mut state, "team-a", ns("a"), Role::Write);
    let token = issue(&mut state, "team-a", 1, 1, Some(100));
    let text = token.text();
    for (needed, namespace) in [
        (None, None),
        (Some(Role::Read), Some("a")),
        (Some(Role::Write), Some("a")),
        (Some(Role::Admin), Some("a")),
        (Some(Role::Read), Some("b")),
        (Some(Role::Read), None),
    ] {
        for now in [50, 100] {
            let separately = state.authenticate(text, now).and_then(|principal| match needed {
                Some(role) => {
                    let scope = namespace.map_or(Scope::Global, |n: &str| Scope::Namespace(n.to_owned()));
                    state.authorize(&principal.user, role, &scope).map(|()| principal)
                }
                None => Ok(principal),
            });
            let at_once = state.admit(text, now, needed, namespace, true).map(|p| p.expect("identified"));
            assert_eq!(at_once, separately, "{needed:?} in {namespace:?} at {now}");
            assert_eq!(state.admit(text, now, needed, namespace, false).map(|p| p.is_none()), at_once.map(|_| true));
        }
    }
}
