//! The live candidate index.
//!
//! Long on purpose: the index, its per-capability orders and the read-only
//! `CandidateView` keep one private `Entry` layout in step; splitting them would expose
//! it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::clock::{Clock, SystemClock};
use crate::interner::Interner;
use crate::rate_limit::{RateLimit, TokenBucket};
use crate::{
    CandidateId, CandidateSpec, Capability, KindStats, Outcome, Resolved, RouteError, RouteRequest,
    Router,
};

/// The orders the index keeps candidates in, per capability, for strategies that want
/// the best candidate without scanning them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Order {
    /// Lowest load (active tasks / max concurrency) first; ties in random order.
    Load,
    /// Lowest expected cost of a task of that kind (cost per hour × expected duration).
    Cost,
    /// Best observed success and speed for that kind first.
    Performance,
}

const ORDERS: usize = 3;

impl Order {
    fn slot(self) -> usize {
        match self {
            Order::Load => 0,
            Order::Cost => 1,
            Order::Performance => 2,
        }
    }
}

/// Settings of a [`CandidateIndex`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IndexConfig {
    /// Circuit breaker thresholds, for every candidate.
    pub breaker: BreakerConfig,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// Seeds the random tie-breaking, so runs repeat.
    pub seed: u64,
    /// Latency assumed for a kind a candidate has not run yet. Default 1 s.
    pub latency_prior: Duration,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            breaker: BreakerConfig::default(),
            clock: Arc::new(SystemClock),
            seed: 0x5eed,
            latency_prior: Duration::from_secs(1),
        }
    }
}

impl IndexConfig {
    /// Sets the breaker thresholds.
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// Sets the clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

#[derive(Debug)]
struct Entry {
    id: CandidateId,
    /// Sorted capabilities.
    caps: Box<[Capability]>,
    /// Position in each capability's posting list, parallel to `caps`.
    positions: Box<[usize]>,
    /// Current sort keys in each order, parallel to `caps`.
    keys: Box<[[u64; ORDERS]]>,
    /// Observed behaviour per kind, parallel to `caps`.
    stats: Box<[KindStats]>,
    active: u32,
    max_concurrency: u32,
    cost_per_hour: f64,
    available: bool,
    breaker: CircuitBreaker,
    bucket: Option<TokenBucket>,
    tiebreak: u32,
    /// Sorted by key, for binary search.
    labels: Box<[(String, String)]>,
}

impl Entry {
    fn cap_position(&self, cap: Capability) -> Option<usize> {
        self.caps.binary_search(&cap).ok()
    }

    fn has_all(&self, needed: &[Capability]) -> bool {
        // Both sorted: one merge walk.
        let mut caps = self.caps.iter();
        'outer: for want in needed {
            for have in caps.by_ref() {
                if have == want {
                    continue 'outer;
                }
                if have > want {
                    return false;
                }
            }
            return false;
        }
        true
    }

    fn load(&self) -> f64 {
        if self.max_concurrency == 0 {
            1.0
        } else {
            f64::from(self.active) / f64::from(self.max_concurrency)
        }
    }
}

/// Every registered candidate, with live load, per-kind statistics, breakers and rate
/// limits, indexed so that routing does not scan the fleet.
///
/// - Capabilities are interned; each has a posting list of its candidates, so a request
///   is filtered starting from its rarest capability.
/// - Per capability, candidates are also kept sorted by load, expected cost and observed
///   performance ([`Order`]), so least-loaded, cost-optimized and performance routing
///   read the best eligible candidates off the front.
/// - Registration, removal and every update are O(c · log n) for a candidate with c
///   capabilities.
#[derive(Debug)]
pub struct CandidateIndex {
    config: IndexConfig,
    interner: Interner,
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_id: HashMap<CandidateId, u32>,
    postings: Vec<Vec<u32>>,
    orders: [Vec<BTreeSet<(u64, u32)>>; ORDERS],
    tenants: HashMap<String, TokenBucket>,
    tenant_limits: HashMap<String, RateLimit>,
    rng: SmallRng,
}

impl Default for CandidateIndex {
    fn default() -> Self {
        Self::new(IndexConfig::default())
    }
}

impl CandidateIndex {
    /// An empty index.
    pub fn new(config: IndexConfig) -> Self {
        let rng = SmallRng::seed_from_u64(config.seed);
        Self {
            config,
            interner: Interner::default(),
            slots: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            postings: Vec::new(),
            orders: [Vec::new(), Vec::new(), Vec::new()],
            tenants: HashMap::new(),
            tenant_limits: HashMap::new(),
            rng,
        }
    }

    /// The index's settings.
    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// The clock's current time.
    pub fn now(&self) -> Instant {
        self.config.clock.now()
    }

    /// How many candidates are registered.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no candidate is registered.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Registers a candidate, or updates one already registered (its load, statistics
    /// and breaker are kept; statistics of capabilities it no longer has are dropped).
    pub fn upsert(&mut self, spec: CandidateSpec) {
        let now = self.now();
        let mut caps: Vec<Capability> = spec.capabilities.iter().map(|c| self.intern(c)).collect();
        caps.sort_unstable();
        caps.dedup();
        let previous = self
            .by_id
            .get(&spec.id)
            .copied()
            .and_then(|slot| self.detach(slot));
        let (active, available, breaker, old_stats) = match previous {
            Some(old) => {
                let stats: Vec<(Capability, KindStats)> = old
                    .caps
                    .iter()
                    .copied()
                    .zip(old.stats.iter().copied())
                    .collect();
                (old.active, old.available, old.breaker, stats)
            }
            None => (0, true, CircuitBreaker::default(), Vec::new()),
        };
        let stats: Box<[KindStats]> = caps
            .iter()
            .map(|c| {
                old_stats
                    .iter()
                    .find(|(k, _)| k == c)
                    .map(|(_, s)| *s)
                    .unwrap_or_default()
            })
            .collect();
        let n = caps.len();
        let mut labels = spec.labels;
        labels.sort_unstable();
        labels.dedup_by(|a, b| a.0 == b.0);
        let entry = Entry {
            id: spec.id,
            caps: caps.into_boxed_slice(),
            positions: vec![0; n].into_boxed_slice(),
            keys: vec![[0; ORDERS]; n].into_boxed_slice(),
            stats,
            active,
            max_concurrency: spec.max_concurrency,
            cost_per_hour: spec.cost_per_hour,
            available,
            breaker,
            bucket: spec.rate_limit.map(|l| TokenBucket::new(l, now)),
            tiebreak: self.rng.random(),
            labels: labels.into_boxed_slice(),
        };
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        self.slots[slot as usize] = Some(entry);
        self.by_id.insert(spec.id, slot);
        self.attach(slot);
    }

    /// Removes a candidate; returns whether it was registered.
    pub fn remove(&mut self, id: CandidateId) -> bool {
        let Some(slot) = self.by_id.remove(&id) else {
            return false;
        };
        self.detach(slot);
        self.free.push(slot);
        true
    }

    /// Marks a candidate available or not (draining, unhealthy, in maintenance).
    pub fn set_available(&mut self, id: CandidateId, available: bool) -> Result<(), RouteError> {
        self.entry_mut(id)?.available = available;
        Ok(())
    }

    /// Sets a candidate's number of running tasks, as it reported it.
    pub fn set_active(&mut self, id: CandidateId, active: u32) -> Result<(), RouteError> {
        let slot = self.slot_of(id)?;
        self.update(slot, |e, _| e.active = active, None);
        Ok(())
    }

    /// Sets the rate limit of a tenant key; `None` removes it.
    pub fn set_tenant_limit(&mut self, tenant: impl Into<String>, limit: Option<RateLimit>) {
        let tenant = tenant.into();
        self.tenants.remove(&tenant);
        match limit {
            Some(l) => self.tenant_limits.insert(tenant, l),
            None => self.tenant_limits.remove(&tenant),
        };
    }

    /// Records that a task was given to `id`: its load goes up, a rate-limit token is
    /// taken, an expired open breaker starts probing.
    pub fn begin(&mut self, id: CandidateId) -> Result<(), RouteError> {
        let slot = self.slot_of(id)?;
        let now = self.now();
        self.update(
            slot,
            |e, _| {
                e.active = e.active.saturating_add(1);
                e.breaker.on_start(now);
                if let Some(b) = &mut e.bucket {
                    b.try_take(now);
                }
            },
            None,
        );
        Ok(())
    }

    /// Records that a task given to `id` was taken back without a result (rejected,
    /// cancelled, reassigned): only its load goes down.
    pub fn release(&mut self, id: CandidateId) -> Result<(), RouteError> {
        let slot = self.slot_of(id)?;
        self.update(slot, |e, _| e.active = e.active.saturating_sub(1), None);
        Ok(())
    }

    /// Records that a task of `kind` given to `id` ended: load, statistics and breaker.
    pub fn finish(
        &mut self,
        id: CandidateId,
        kind: &str,
        outcome: Outcome,
    ) -> Result<(), RouteError> {
        let slot = self.slot_of(id)?;
        let now = self.now();
        let breaker = self.config.breaker;
        let cap = self.interner.get(kind);
        self.update(
            slot,
            |e, _| {
                e.active = e.active.saturating_sub(1);
                e.breaker.on_result(&breaker, outcome.success, now);
                if let Some(i) = cap.and_then(|c| e.cap_position(c)) {
                    e.stats[i].record(outcome.success, outcome.latency);
                }
            },
            cap,
        );
        Ok(())
    }

    /// Checks the tenant's rate limit, asks `router` for a candidate and records the
    /// assignment with [`begin`](Self::begin).
    pub fn dispatch(
        &mut self,
        router: &mut dyn Router,
        request: &RouteRequest,
    ) -> Result<CandidateId, RouteError> {
        let resolved = self.resolve(request)?;
        if let Some(tenant) = &request.tenant
            && let Some(limit) = self.tenant_limits.get(tenant).copied()
        {
            let bucket = self
                .tenants
                .entry(tenant.clone())
                .or_insert_with(|| TokenBucket::new(limit, resolved.now));
            if !bucket.has_token(resolved.now) {
                return Err(RouteError::TenantRateLimited {
                    tenant: tenant.clone(),
                });
            }
        }
        let id = router.route(self, &resolved)?;
        if let Some(bucket) = request
            .tenant
            .as_ref()
            .and_then(|t| self.tenants.get_mut(t))
        {
            bucket.try_take(resolved.now);
        }
        self.begin(id)?;
        Ok(id)
    }

    /// Interns the request's capabilities; a capability no candidate ever had means no
    /// candidate can take it.
    pub fn resolve(&self, request: &RouteRequest) -> Result<Resolved, RouteError> {
        let missing = || RouteError::NoCapableCandidate {
            needed: std::iter::once(request.kind.clone())
                .chain(request.required.iter().cloned())
                .collect(),
        };
        let kind = self.interner.get(&request.kind).ok_or_else(missing)?;
        let mut all = Vec::with_capacity(1 + request.required.len());
        all.push(kind);
        for name in &request.required {
            all.push(self.interner.get(name).ok_or_else(missing)?);
        }
        all.sort_unstable();
        all.dedup();
        let rarest = *all
            .iter()
            .min_by_key(|c| self.postings[c.index()].len())
            .ok_or_else(missing)?;
        if self.postings[rarest.index()].is_empty() {
            return Err(missing());
        }
        let mut preferred: Vec<Capability> = request
            .preferred
            .iter()
            .filter_map(|p| self.interner.get(p))
            .filter(|c| !all.contains(c) && !self.postings[c.index()].is_empty())
            .collect();
        preferred.sort_unstable_by_key(|c| self.postings[c.index()].len());
        preferred.dedup();
        Ok(Resolved {
            kind,
            all,
            preferred,
            rarest,
            priority: request.priority,
            cost_sensitive: request.cost_sensitive,
            exclude: request.exclude.clone(),
            now: self.now(),
        })
    }

    /// A read-only view of a registered candidate.
    pub fn get(&self, id: CandidateId) -> Option<CandidateView<'_>> {
        let slot = *self.by_id.get(&id)?;
        Some(self.view(slot))
    }

    /// The candidates that have every needed capability, in registration-list order.
    pub fn capable<'a>(
        &'a self,
        request: &'a Resolved,
    ) -> impl Iterator<Item = CandidateView<'a>> + 'a {
        self.postings[request.rarest.index()]
            .iter()
            .map(|&slot| self.view(slot))
            .filter(move |c| c.entry().has_all(&request.all))
    }

    /// The candidates that can take the request now: capable, available, not saturated,
    /// breaker closed (or probing), within their rate limit.
    pub fn eligible<'a>(
        &'a self,
        request: &'a Resolved,
    ) -> impl Iterator<Item = CandidateView<'a>> + 'a {
        self.postings[request.rarest.index()]
            .iter()
            .map(|&slot| self.view(slot))
            .filter(move |c| c.is_eligible(request))
    }

    /// The eligible candidates in `order`: the best first, without scanning the rest.
    ///
    /// Load order walks the rarest needed capability's list; cost and performance walk
    /// the task kind's list, whose keys are that kind's statistics.
    pub fn ordered<'a>(
        &'a self,
        order: Order,
        request: &'a Resolved,
    ) -> impl Iterator<Item = CandidateView<'a>> + 'a {
        let cap = match order {
            Order::Load => request.rarest,
            Order::Cost | Order::Performance => request.kind,
        };
        self.orders[order.slot()][cap.index()]
            .iter()
            .map(|&(_, slot)| self.view(slot))
            .filter(move |c| c.is_eligible(request))
    }

    /// The eligible candidates that have capability `cap` too, lowest load first.
    pub fn ordered_with<'a>(
        &'a self,
        cap: Capability,
        request: &'a Resolved,
    ) -> impl Iterator<Item = CandidateView<'a>> + 'a {
        self.orders[Order::Load.slot()][cap.index()]
            .iter()
            .map(|&(_, slot)| self.view(slot))
            .filter(move |c| c.is_eligible(request))
    }

    /// A uniformly random capable candidate that is eligible, trying up to `tries` draws.
    pub fn sample<'a>(
        &'a self,
        request: &'a Resolved,
        rng: &mut impl Rng,
        tries: usize,
    ) -> Option<CandidateView<'a>> {
        let list = &self.postings[request.rarest.index()];
        if list.is_empty() {
            return None;
        }
        (0..tries).find_map(|_| {
            let candidate = self.view(list[rng.random_range(0..list.len())]);
            candidate.is_eligible(request).then_some(candidate)
        })
    }

    /// How many candidates have capability `cap` (the length of its list).
    pub fn list_len(&self, cap: Capability) -> usize {
        self.postings.get(cap.index()).map_or(0, Vec::len)
    }

    /// The `i`-th candidate on the rarest needed capability's list (for rotations).
    pub fn list_at<'a>(&'a self, request: &Resolved, i: usize) -> Option<CandidateView<'a>> {
        self.postings[request.rarest.index()]
            .get(i)
            .map(|&slot| self.view(slot))
    }

    /// The rarest needed capability of `request`.
    pub fn rarest(&self, request: &Resolved) -> Capability {
        request.rarest
    }

    /// Explains why no candidate is eligible for `request`.
    pub fn explain(&self, request: &Resolved) -> RouteError {
        let (mut candidates, mut saturated, mut open, mut limited, mut unavailable) =
            (0, 0, 0, 0, 0);
        for c in self.capable(request) {
            candidates += 1;
            let e = c.entry();
            if !e.available || request.exclude.contains(&e.id) {
                unavailable += 1;
            } else if e.active >= e.max_concurrency {
                saturated += 1;
            } else if !e.breaker.allows(&self.config.breaker, request.now) {
                open += 1;
            } else if e.bucket.as_ref().is_some_and(|b| !b.has_token(request.now)) {
                limited += 1;
            }
        }
        match candidates {
            0 => RouteError::NoCapableCandidate {
                needed: request
                    .all
                    .iter()
                    .map(|c| self.interner.name(*c).to_owned())
                    .collect(),
            },
            n if saturated == n => RouteError::AllSaturated { candidates: n },
            n if open == n => RouteError::AllBreakersOpen { candidates: n },
            n if limited == n => RouteError::AllRateLimited { candidates: n },
            n => RouteError::NoneAvailable {
                candidates: n,
                saturated,
                breaker_open: open,
                rate_limited: limited,
                unavailable,
            },
        }
    }

    /// The name of an interned capability.
    pub fn capability_name(&self, cap: Capability) -> &str {
        self.interner.name(cap)
    }

    /// The interned id of a capability name, if any candidate ever had it.
    pub fn capability(&self, name: &str) -> Option<Capability> {
        self.interner.get(name)
    }

    fn view(&self, slot: u32) -> CandidateView<'_> {
        CandidateView { index: self, slot }
    }

    fn entry(&self, slot: u32) -> &Entry {
        // Slots handed out by the lists always hold an entry.
        self.slots[slot as usize]
            .as_ref()
            .unwrap_or_else(|| unreachable!("listed slot {slot} is empty"))
    }

    fn slot_of(&self, id: CandidateId) -> Result<u32, RouteError> {
        self.by_id
            .get(&id)
            .copied()
            .ok_or(RouteError::UnknownCandidate(id))
    }

    fn entry_mut(&mut self, id: CandidateId) -> Result<&mut Entry, RouteError> {
        let slot = self.slot_of(id)?;
        self.slots[slot as usize]
            .as_mut()
            .ok_or(RouteError::UnknownCandidate(id))
    }

    fn intern(&mut self, name: &str) -> Capability {
        let cap = self.interner.intern(name);
        while self.postings.len() < self.interner.len() {
            self.postings.push(Vec::new());
            for order in &mut self.orders {
                order.push(BTreeSet::new());
            }
        }
        cap
    }

    /// Applies `change` to a candidate and re-keys it: load keys always, cost and
    /// performance keys for `kind` (whose statistics may have changed).
    fn update(
        &mut self,
        slot: u32,
        change: impl FnOnce(&mut Entry, &IndexConfig),
        kind: Option<Capability>,
    ) {
        let tiebreak = self.rng.random();
        let prior = self.config.latency_prior.as_secs_f64();
        let Some(entry) = self.slots[slot as usize].as_mut() else {
            return;
        };
        change(entry, &self.config);
        entry.tiebreak = tiebreak;
        for i in 0..entry.caps.len() {
            let cap = entry.caps[i].index();
            let fresh = keys(entry, i, prior);
            for (o, order) in self.orders.iter_mut().enumerate() {
                let rekey = o == Order::Load.slot() || Some(entry.caps[i]) == kind;
                if rekey && entry.keys[i][o] != fresh[o] {
                    order[cap].remove(&(entry.keys[i][o], slot));
                    order[cap].insert((fresh[o], slot));
                    entry.keys[i][o] = fresh[o];
                }
            }
        }
    }

    fn attach(&mut self, slot: u32) {
        let prior = self.config.latency_prior.as_secs_f64();
        let Some(entry) = self.slots[slot as usize].as_mut() else {
            return;
        };
        for i in 0..entry.caps.len() {
            let cap = entry.caps[i].index();
            entry.positions[i] = self.postings[cap].len();
            self.postings[cap].push(slot);
            entry.keys[i] = keys(entry, i, prior);
            for (o, order) in self.orders.iter_mut().enumerate() {
                order[cap].insert((entry.keys[i][o], slot));
            }
        }
    }

    /// Takes a candidate out of every list and order; returns it.
    fn detach(&mut self, slot: u32) -> Option<Entry> {
        let entry = self.slots[slot as usize].take()?;
        for (i, cap) in entry.caps.iter().enumerate() {
            let list = &mut self.postings[cap.index()];
            let pos = entry.positions[i];
            list.swap_remove(pos);
            if let Some(&moved) = list.get(pos)
                && let Some(m) = self.slots[moved as usize].as_mut()
                && let Some(j) = m.cap_position(*cap)
            {
                m.positions[j] = pos;
            }
            for (o, order) in self.orders.iter_mut().enumerate() {
                order[cap.index()].remove(&(entry.keys[i][o], slot));
            }
        }
        Some(entry)
    }
}

/// Sort keys of candidate `e` for its `i`-th capability: a non-negative f32 score in the
/// high half (its bit pattern sorts like the number), the tie-break in the low half.
fn keys(e: &Entry, i: usize, latency_prior: f64) -> [u64; ORDERS] {
    let pack =
        |score: f64| (u64::from((score.max(0.0) as f32).to_bits()) << 32) | u64::from(e.tiebreak);
    let stats = &e.stats[i];
    let latency = stats.latency_or(latency_prior);
    [
        pack(e.load()),
        pack(e.cost_per_hour * latency / 3600.0),
        pack(1.0 - static_performance(stats, latency)),
    ]
}

/// Success and speed, without load: the order performance routing reads first.
pub(crate) fn static_performance(stats: &KindStats, latency: f64) -> f64 {
    0.6 * stats.success_rate() + 0.4 / (1.0 + latency)
}

/// A read-only view of one candidate.
#[derive(Clone, Copy)]
pub struct CandidateView<'a> {
    index: &'a CandidateIndex,
    slot: u32,
}

impl std::fmt::Debug for CandidateView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = self.entry();
        f.debug_struct("Candidate")
            .field("id", &e.id)
            .field("active", &e.active)
            .field("max", &e.max_concurrency)
            .finish()
    }
}

impl<'a> CandidateView<'a> {
    fn entry(&self) -> &'a Entry {
        self.index.entry(self.slot)
    }

    /// Its id.
    pub fn id(&self) -> CandidateId {
        self.entry().id
    }

    /// Tasks running on it.
    pub fn active(&self) -> u32 {
        self.entry().active
    }

    /// Its concurrency limit.
    pub fn max_concurrency(&self) -> u32 {
        self.entry().max_concurrency
    }

    /// Active tasks over the concurrency limit (1 when saturated).
    pub fn load(&self) -> f64 {
        self.entry().load()
    }

    /// Its hourly cost.
    pub fn cost_per_hour(&self) -> f64 {
        self.entry().cost_per_hour
    }

    /// Whether it has capability `cap`.
    pub fn has(&self, cap: Capability) -> bool {
        self.entry().cap_position(cap).is_some()
    }

    /// What it has shown for tasks of `kind` (empty if it never ran one, or lacks it).
    pub fn stats(&self, kind: Capability) -> KindStats {
        let e = self.entry();
        e.cap_position(kind).map(|i| e.stats[i]).unwrap_or_default()
    }

    /// Expected latency for `kind`, in seconds (the index's prior if unobserved).
    pub fn expected_latency(&self, kind: Capability) -> f64 {
        self.stats(kind)
            .latency_or(self.index.config.latency_prior.as_secs_f64())
    }

    /// The value of its label `key`, if it has one.
    pub fn label(&self, key: &str) -> Option<&'a str> {
        let labels = &self.entry().labels;
        labels
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| labels[i].1.as_str())
    }

    /// Its circuit breaker.
    pub fn breaker(&self) -> &'a CircuitBreaker {
        &self.entry().breaker
    }

    /// Whether it can take `request` now.
    pub fn is_eligible(&self, request: &Resolved) -> bool {
        let e = self.entry();
        e.available
            && e.active < e.max_concurrency
            && e.has_all(&request.all)
            && (request.exclude.is_empty() || !request.exclude.contains(&e.id))
            && e.breaker.allows(&self.index.config.breaker, request.now)
            && e.bucket.as_ref().is_none_or(|b| b.has_token(request.now))
    }
}
