//! The local app's registration: checked every interval, registered after
//! `passes_to_register` passing checks in a row, deregistered after
//! `failures_to_deregister` failing ones, and deregistered when the agent
//! stops. While registered, the SDK's [`Registration`] keeps the instance
//! alive (heartbeats in `ap` namespaces).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use janus_api::native::RegisterInstance;
use janus_client::{Client, Registration, ServiceRef};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::check::Check;
use crate::config::AppConfig;
use crate::metrics::Metrics;

/// What the agent knows of its app, for `/health`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppStatus {
    /// `namespace/group@@service` of the app.
    pub service: String,
    /// `ip:port` registered for it.
    pub instance: String,
    /// `passing`, `failing`, or `unknown` before the first check.
    pub check: &'static str,
    /// Why the last check failed.
    pub check_output: Option<String>,
    /// Whether the instance is registered now.
    pub registered: bool,
    /// The last registration error, while it lasts.
    pub registry_error: Option<String>,
}

/// Runs the app's checks and registration until `shutdown`, then deregisters.
pub(crate) async fn run(
    client: Client,
    app: AppConfig,
    status: Arc<Mutex<AppStatus>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let check = match Check::new(&app.check) {
        Ok(check) => check,
        Err(error) => {
            // Validated with the configuration; kept as a status rather than a panic.
            status.lock().unwrap_or_else(PoisonError::into_inner).check_output = Some(error);
            return;
        }
    };
    let service = ServiceRef::new(app.namespace.clone(), app.service.clone()).in_group(app.group.clone());
    let instance = RegisterInstance {
        ip: Some(app.ip.clone()),
        port: Some(i64::from(app.port)),
        cluster: app.cluster.clone(),
        weight: app.weight,
        healthy: None,
        enabled: None,
        ephemeral: None,
        metadata: app.metadata.clone(),
        instance_id: None,
    };
    let (interval, timeout) = (app.check.interval(), app.check.timeout());
    let (mut passes, mut failures) = (0u32, 0u32);
    let mut registration: Option<Registration> = None;
    let update = |change: &dyn Fn(&mut AppStatus)| change(&mut status.lock().unwrap_or_else(PoisonError::into_inner));
    loop {
        let outcome = tokio::select! {
            () = shutdown.cancelled() => break,
            outcome = check.run(timeout) => outcome,
        };
        metrics.check_ran(outcome.is_ok());
        match &outcome {
            Ok(()) => {
                passes += 1;
                failures = 0;
            }
            Err(_) => {
                failures += 1;
                passes = 0;
            }
        }
        let was_failing = status.lock().unwrap_or_else(PoisonError::into_inner).check == "failing";
        if let Err(why) = &outcome
            && !was_failing
        {
            tracing::warn!(service = %service, check = %why, "the app's health check fails");
        }
        update(&|s| {
            s.check = if outcome.is_ok() { "passing" } else { "failing" };
            s.check_output = outcome.clone().err();
        });
        if registration.is_none() && passes >= app.check.passes_to_register {
            match client.keep_registered(&service, instance.clone()).await {
                Ok(kept) => {
                    tracing::info!(service = %service, ip = %app.ip, port = app.port, "registered the app");
                    registration = Some(kept);
                    update(&|s| s.registry_error = None);
                }
                Err(error) => {
                    tracing::warn!(service = %service, %error, "cannot register the app");
                    let message = error.to_string();
                    update(&|s| s.registry_error = Some(message.clone()));
                }
            }
        } else if failures >= app.check.failures_to_deregister
            && let Some(kept) = registration.take()
        {
            tracing::warn!(service = %service, failures, "deregistering the app: its health check keeps failing");
            deregister(kept, &status).await;
        }
        if let Some(kept) = &registration {
            let alive = kept.status();
            update(&|s| s.registry_error = alive.last_error.clone());
        }
        update(&|s| s.registered = registration.is_some());
        metrics.set_registered(registration.is_some());
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
    if let Some(kept) = registration.take() {
        tracing::info!(service = %service, "deregistering the app: the agent stops");
        deregister(kept, &status).await;
    }
    update(&|s| s.registered = false);
    metrics.set_registered(false);
}

async fn deregister(kept: Registration, status: &Mutex<AppStatus>) {
    // Bounded: a registry that does not answer must not hold up the agent's exit.
    let outcome = tokio::time::timeout(Duration::from_secs(5), kept.deregister()).await;
    let error = match outcome {
        Ok(Ok(_)) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(_) => Some("the registry did not answer the deregistration within 5 s".to_owned()),
    };
    if let Some(error) = &error {
        tracing::warn!(%error, "cannot deregister the app; its lease will run out");
    }
    status.lock().unwrap_or_else(PoisonError::into_inner).registry_error = error;
}

/// The status of an app before its first check.
pub(crate) fn initial_status(app: &AppConfig) -> AppStatus {
    let service = ServiceRef::new(app.namespace.clone(), app.service.clone()).in_group(app.group.clone());
    AppStatus {
        service: service.to_string(),
        instance: format!("{}:{}", app.ip, app.port),
        check: "unknown",
        ..AppStatus::default()
    }
}
