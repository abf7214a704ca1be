//! Keeping an instance registered for as long as the caller wants it.
//!
//! [`Client::keep_registered`] registers an instance and hands back a
//! [`Registration`] that keeps it alive:
//! - in an `ap` namespace the instance is ephemeral: the registration beats
//!   (`PUT …/heartbeat`) at the interval the server returns with every beat
//!   (its first beat follows the registration at once, to learn it); a beat
//!   answered 404 (the lease expired, or the node lost the instance) is
//!   followed by a registration, as Nacos's clients do after error 20404; a
//!   beat that fails otherwise is tried again after at most a second, on
//!   the client's next address when one does not answer;
//! - in a `cp` namespace the instance is persistent (on Raft, checked by the
//!   server's probes): nothing needs to be renewed.
//!
//! [`Registration::deregister`] removes the instance and says how that went;
//! dropping a [`Registration`] without it removes the instance in the
//! background (when a tokio runtime is still running), so an instance never
//! outlives the value that keeps it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::StatusCode;
use janus_api::native::{Mode, RegisterInstance, WriteAck};
use tokio::task::JoinHandle;

use crate::{Client, Error, ServiceRef};

/// The beat interval assumed until the server names one (the server's default).
const DEFAULT_BEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Bounds on the interval a server may ask for.
const MIN_BEAT_INTERVAL: Duration = Duration::from_millis(100);
const MAX_BEAT_INTERVAL: Duration = Duration::from_secs(60);
/// The longest pause before a failed beat or registration is tried again.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// How a kept registration is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationStatus {
    /// The namespace's mode: `ap` instances are beaten, `cp` ones are not.
    pub mode: Mode,
    /// Whether the last beat or registration succeeded.
    pub alive: bool,
    /// Beats answered so far.
    pub beats: u64,
    /// Registrations so far (the first, plus one per lost lease).
    pub registrations: u64,
    /// The interval the server asks for.
    pub beat_interval: Duration,
    /// The last error, while the registration has not recovered from it.
    pub last_error: Option<String>,
}

/// An instance kept registered (see the module docs); deregistered by
/// [`Registration::deregister`] or, in the background, on drop.
#[derive(Debug)]
pub struct Registration {
    client: Client,
    service: ServiceRef,
    instance: RegisterInstance,
    status: Arc<Mutex<RegistrationStatus>>,
    keeper: Option<JoinHandle<()>>,
}

impl Client {
    /// Registers `instance` of `service` and keeps it registered until the
    /// returned [`Registration`] is deregistered or dropped. The instance
    /// needs an address and a port.
    ///
    /// # Errors
    /// As [`Client::register_instance`] for the first registration;
    /// [`Error::Invalid`] without an address or a port.
    pub async fn keep_registered(
        &self,
        service: &ServiceRef,
        instance: RegisterInstance,
    ) -> Result<Registration, Error> {
        if instance.ip.is_none() || instance.port.and_then(|p| u16::try_from(p).ok()).is_none() {
            return Err(Error::Invalid("a kept registration needs an address and a port (1-65535)".to_owned()));
        }
        let ack = self.register_instance(service, &instance).await?;
        let status = Arc::new(Mutex::new(RegistrationStatus {
            mode: ack.mode,
            alive: true,
            beats: 0,
            registrations: 1,
            beat_interval: DEFAULT_BEAT_INTERVAL,
            last_error: None,
        }));
        let keeper = (ack.mode == Mode::Ap)
            .then(|| tokio::spawn(keep_alive(self.clone(), service.clone(), instance.clone(), status.clone())));
        Ok(Registration { client: self.clone(), service: service.clone(), instance, status, keeper })
    }
}

impl Registration {
    /// How the registration is doing.
    #[must_use]
    pub fn status(&self) -> RegistrationStatus {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The service the instance belongs to.
    #[must_use]
    pub fn service(&self) -> &ServiceRef {
        &self.service
    }

    /// The instance as registered.
    #[must_use]
    pub fn instance(&self) -> &RegisterInstance {
        &self.instance
    }

    /// Stops keeping the instance and removes it. An instance the registry
    /// no longer holds (404) counts as removed.
    ///
    /// # Errors
    /// As [`Client::deregister_instance`], but never for a 404.
    pub async fn deregister(mut self) -> Result<Option<WriteAck>, Error> {
        if let Some(keeper) = self.keeper.take() {
            keeper.abort();
        }
        let (client, service, instance) = (self.client.clone(), self.service.clone(), self.instance.clone());
        // Forget the instance before the call: dropping `self` must not send a second one.
        self.instance.ip = None;
        remove(&client, &service, &instance).await
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(keeper) = self.keeper.take() {
            keeper.abort();
        }
        if self.instance.ip.is_none() {
            return;
        }
        // Without a runtime (the program is ending) the lease runs out on its own.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (client, service, instance) = (self.client.clone(), self.service.clone(), self.instance.clone());
            runtime.spawn(async move {
                let _ = remove(&client, &service, &instance).await;
            });
        }
    }
}

/// `DELETE` of the instance; a 404 means it is gone already.
async fn remove(client: &Client, service: &ServiceRef, instance: &RegisterInstance) -> Result<Option<WriteAck>, Error> {
    let Some(ip) = instance.ip.as_deref() else { return Ok(None) };
    let port = instance.port.and_then(|p| u16::try_from(p).ok()).unwrap_or_default();
    match client.deregister_instance(service, ip, port, instance.cluster.as_deref()).await {
        Ok(ack) => Ok(Some(ack)),
        Err(error) if error.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Beats until aborted; registers again when a beat finds no instance.
async fn keep_alive(
    client: Client,
    service: ServiceRef,
    instance: RegisterInstance,
    status: Arc<Mutex<RegistrationStatus>>,
) {
    // Checked by `keep_registered`: both are there.
    let ip = instance.ip.clone().unwrap_or_default();
    let port = instance.port.and_then(|p| u16::try_from(p).ok()).unwrap_or_default();
    let cluster = instance.cluster.clone();
    let update =
        |change: &dyn Fn(&mut RegistrationStatus)| change(&mut status.lock().unwrap_or_else(PoisonError::into_inner));
    let mut pause = Duration::ZERO;
    loop {
        tokio::time::sleep(pause).await;
        let interval = status.lock().unwrap_or_else(PoisonError::into_inner).beat_interval;
        match client.heartbeat(&service, &ip, port, cluster.as_deref()).await {
            Ok(ack) => {
                let interval = Duration::from_millis(ack.beat_interval_ms).clamp(MIN_BEAT_INTERVAL, MAX_BEAT_INTERVAL);
                update(&|s| {
                    s.alive = true;
                    s.beats += 1;
                    s.beat_interval = interval;
                    s.last_error = None;
                });
                pause = interval;
            }
            Err(error) if error.status() == Some(StatusCode::NOT_FOUND) => {
                match client.register_instance(&service, &instance).await {
                    Ok(_) => {
                        update(&|s| {
                            s.alive = true;
                            s.registrations += 1;
                            s.last_error = None;
                        });
                        // Beat at once: it brings the interval.
                        pause = Duration::ZERO;
                    }
                    Err(error) => {
                        let message = format!("registering again after the lease was lost: {error}");
                        update(&|s| {
                            s.alive = false;
                            s.last_error = Some(message.clone());
                        });
                        pause = interval.min(MAX_RETRY_PAUSE);
                    }
                }
            }
            Err(error) => {
                let message = format!("heartbeat: {error}");
                update(&|s| {
                    s.alive = false;
                    s.last_error = Some(message.clone());
                });
                pause = interval.min(MAX_RETRY_PAUSE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;
    use crate::testing::{FakeServer, Reply};
    use crate::{Options, registration};

    const ACK: &str = r#"{"namespace":"public","mode":"ap","revision":3}"#;
    const CP_ACK: &str = r#"{"namespace":"orders","mode":"cp","revision":3}"#;
    const BEAT: &str = r#"{"mode":"ap","beat_interval_ms":100}"#;
    const UNKNOWN: &str = r#"{"code":"not_found","message":"instance 10.0.0.7:8080 is not registered"}"#;

    fn count(server: &FakeServer, method: &str, tail: &str) -> usize {
        server
            .seen()
            .iter()
            .filter(|s| s.method == method && s.target.split('?').next().unwrap().ends_with(tail))
            .count()
    }

    #[tokio::test]
    async fn beats_at_the_servers_interval_and_registers_again_after_a_lost_lease() {
        let lost = Arc::new(AtomicBool::new(false));
        let beats = Arc::new(AtomicUsize::new(0));
        let server = {
            let (lost, beats) = (lost.clone(), beats.clone());
            FakeServer::start(move |seen| match seen.method.as_str() {
                "POST" => Reply::json(200, ACK),
                "PUT" if lost.swap(false, Ordering::SeqCst) => Reply::json(404, UNKNOWN),
                "PUT" => {
                    beats.fetch_add(1, Ordering::SeqCst);
                    Reply::json(200, BEAT)
                }
                _ => Reply::json(200, ACK),
            })
            .await
        };
        let client = Client::new([server.addr.clone()], Options::default()).unwrap();
        let web = ServiceRef::new("public", "web");
        let kept = client.keep_registered(&web, registration("10.0.0.7", 8080)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(550)).await;
        // One beat at once, then one every 100 ms as the server asked.
        let so_far = beats.load(Ordering::SeqCst);
        // Six on time; fewer when the test machine is busy, never many more.
        assert!((3..=8).contains(&so_far), "{so_far} beats in 550 ms at 100 ms");
        assert_eq!(kept.status().beat_interval, Duration::from_millis(100));
        assert!(kept.status().alive);

        lost.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let status = kept.status();
        assert_eq!(status.registrations, 2, "{status:?}");
        assert!(status.alive && status.last_error.is_none(), "{status:?}");
        assert_eq!(count(&server, "POST", "/instances"), 2);

        assert!(kept.deregister().await.unwrap().is_some());
        assert_eq!(count(&server, "DELETE", "/instances/10.0.0.7/8080"), 1);
        let after = beats.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(beats.load(Ordering::SeqCst), after, "no beat after deregistering");
        assert_eq!(count(&server, "DELETE", "/instances/10.0.0.7/8080"), 1, "deregistered once");
    }

    #[tokio::test]
    async fn a_cp_instance_is_not_beaten_and_dropping_deregisters_it() {
        let server = FakeServer::start(|seen| match seen.method.as_str() {
            "POST" | "DELETE" => Reply::json(200, CP_ACK),
            _ => Reply::json(500, "{}"),
        })
        .await;
        let client = Client::new([server.addr.clone()], Options::default()).unwrap();
        let orders = ServiceRef::new("orders", "billing");
        let kept = client.keep_registered(&orders, registration("127.0.0.1", 9000)).await.unwrap();
        assert_eq!(kept.status().mode, Mode::Cp);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(count(&server, "PUT", "/heartbeat"), 0);
        drop(kept);
        for _ in 0..50 {
            if count(&server, "DELETE", "/instances/127.0.0.1/9000") == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("dropping the registration did not deregister: {:?}", server.seen());
    }

    #[tokio::test]
    async fn a_failing_beat_is_reported_and_retried_within_a_second() {
        let down = Arc::new(AtomicBool::new(false));
        let server = {
            let down = down.clone();
            FakeServer::start(move |seen| match seen.method.as_str() {
                "PUT" if down.load(Ordering::SeqCst) => Reply::json(500, r#"{"code":"internal","message":"boom"}"#),
                "PUT" => Reply::json(200, r#"{"mode":"ap","beat_interval_ms":5000}"#),
                _ => Reply::json(200, ACK),
            })
            .await
        };
        down.store(true, Ordering::SeqCst);
        let client = Client::new([server.addr.clone()], Options::default()).unwrap();
        let kept =
            client.keep_registered(&ServiceRef::new("public", "web"), registration("10.0.0.7", 8080)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let status = kept.status();
        assert!(!status.alive);
        assert!(status.last_error.as_deref().is_some_and(|e| e.contains("boom")), "{status:?}");
        down.store(false, Ordering::SeqCst);
        // The next try comes within a second of the failure.
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let status = kept.status();
        assert!(status.alive && status.last_error.is_none(), "{status:?}");
        assert_eq!(status.beat_interval, Duration::from_secs(5));
    }

    #[tokio::test]
    async fn an_instance_without_a_port_is_refused_before_anything_is_sent() {
        let server = FakeServer::answering(200, ACK).await;
        let client = Client::new([server.addr.clone()], Options::default()).unwrap();
        let mut instance = registration("10.0.0.7", 8080);
        instance.port = None;
        let error = client.keep_registered(&ServiceRef::new("public", "web"), instance).await.unwrap_err();
        assert!(matches!(error, Error::Invalid(_)), "{error}");
        assert!(server.seen().is_empty());
    }
}
