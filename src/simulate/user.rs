//! The simulated user: walks a fitted model on a live page and reacts to what it gets.
//!
//! Each step the user
//! 1. reads what happened so far from its own recording (capture.js, cooked by the same
//!    [`crate::cook`] code as real sessions) and maps it onto model states: the history;
//! 2. looks at the live page for the targets of the actions the model allows on this route;
//! 3. draws the next action from the model (Gumbel-max, keyed draws, [`super::keyed`]);
//! 4. if that action's target is missing, looks for it by role and label; failing that,
//!    leaves;
//! 5. waits its think time (× `time_scale`), acts with trusted input, and waits for the page
//!    by the page's own signals. No reaction: it retries as recorded users retried after dead
//!    clicks, then goes on or leaves. A slow reaction meets its patience: past it, it leaves.
//!
//! Navigations, submits and conversion are never chosen: they are what the page does, and
//! the user sees them in its recording. Nothing about the outcome is scripted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::driver::{Chromium, DriverError, Tab, TabOptions};
use super::keyed::{choose, Key, Purpose};
use crate::cook::{cook_session, ActionKind, CookedSession, Goal};
use crate::event::{Batch, ValueClass};
use crate::model::{Model, StateId, CONVERTED, END, START};

/// A state id that the model does not know (the chain backs off from it).
pub const UNKNOWN_STATE: StateId = StateId::MAX;

/// How a simulated user behaves beyond what the model says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserConfig {
    /// Factor on fitted think times and typing gaps (waits for the page stay real).
    pub time_scale: f64,
    /// Longest think time after scaling, ms.
    pub max_think_ms: f64,
    /// Most actions per user.
    pub max_steps: usize,
    /// How long a click may go without any reaction before the user calls it dead, ms.
    pub reaction_ms: u64,
    /// How long the page must be quiet to count as settled, ms.
    pub quiet_ms: u64,
    /// Patience for a slow page: log-normal median (ms) and log-scale sigma.
    pub patience_median_ms: f64,
    pub patience_sigma: f64,
}

impl Default for UserConfig {
    fn default() -> Self {
        UserConfig {
            time_scale: 0.2,
            max_think_ms: 1500.0,
            max_steps: 60,
            reaction_ms: 800,
            quiet_ms: 80,
            patience_median_ms: 3000.0,
            patience_sigma: 0.5,
        }
    }
}

/// Why the walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// The model chose END.
    Done,
    /// The action it wanted had no target on the page, even by role and label.
    TargetMissing,
    /// Its clicks got no reaction and it gave up.
    DeadClick,
    /// The page took longer than its patience.
    Impatient,
    /// Its action brought a JS error or a failed request, and it gave up.
    Failed,
    /// It reached `max_steps`.
    MaxSteps,
    /// The page never loaded.
    Unreachable,
}

/// One simulated session: what the user did and what was recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimSession {
    pub user: u64,
    pub exit: Exit,
    pub steps: usize,
    /// Browser actions performed (clicks, keystrokes, scrolls, navigations).
    pub browser_actions: usize,
    pub cooked: CookedSession,
    #[serde(skip)]
    pub batches: Vec<Batch>,
}

/// One step of a user's plan (see [`Walk::plan`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    pub state: StateId,
    pub think_ms: f64,
    /// The synthetic value typed, for an input.
    pub value: Option<String>,
}

/// Where an action's target is on the live page.
#[derive(Debug, Clone, Deserialize)]
struct Found {
    found: bool,
    usable: bool,
    x: f64,
    y: f64,
    #[serde(default)]
    searched: bool,
    /// A text field, select or editable area: clicking it is not expected to change the page.
    #[serde(default)]
    quiet: bool,
    /// A link, button or other control, which promises a reaction (a picture does not).
    #[serde(default)]
    control: bool,
}

/// Seeds `Math.random` per user, so page-side randomness is the same on both builds.
fn seeded_random_script(seed: u64, user: u64) -> String {
    let s = Key {
        seed,
        user,
        purpose: Purpose::Search,
        state: u64::MAX,
        visit: 0,
        item: 0,
    }
    .hash()
        & 0xffff_ffff;
    format!(
        "(function(){{var s={s}>>>0;Math.random=function(){{s=(s+0x6D2B79F5)>>>0;var t=s;\
         t=Math.imul(t^(t>>>15),t|1);t^=t+Math.imul(t^(t>>>7),t|61);\
         return((t^(t>>>14))>>>0)/4294967296;}};}})();"
    )
}

/// JS that resolves target descriptors on the live page in one round trip.
const RESOLVE_JS: &str = r#"(function(descs, search){
function vis(e){ if(!e) return false; var r=e.getBoundingClientRect(); var s=getComputedStyle(e);
  return r.width>0&&r.height>0&&s.visibility!=='hidden'&&s.display!=='none'&&!e.disabled; }
function norm(t){ return (t||'').replace(/\s+/g,' ').trim(); }
function role(e){ var r=e.getAttribute('role'); if(r) return r; var t=e.tagName.toLowerCase();
  if(t==='a'&&e.hasAttribute('href')) return 'link'; if(t==='button') return 'button';
  if(t==='select') return 'combobox'; if(t==='textarea') return 'textbox';
  if(t==='input'){ var ty=(e.type||'text').toLowerCase();
    if(['button','submit','reset','image'].indexOf(ty)>=0) return 'button';
    if(ty==='checkbox'||ty==='radio') return ty; return 'textbox'; } return null; }
function name(e){ return norm(e.getAttribute('aria-label')||e.value&&e.type&&/button|submit/.test(e.type)&&e.value||e.alt||e.textContent).slice(0,80); }
function byLabel(text){ var ls=document.querySelectorAll('label'); for(var i=0;i<ls.length;i++){
  if(norm(ls[i].textContent)===text){ var c=ls[i].control||(ls[i].htmlFor&&document.getElementById(ls[i].htmlFor)); if(c) return c; } } return null; }
function exact(d){ var i=d.indexOf(':'); var k=d.slice(0,i), v=d.slice(i+1);
  try{
  if(k==='testid'){ var q=JSON.stringify(v); return document.querySelector('[data-testid='+q+'],[data-test-id='+q+'],[data-test='+q+']'); }
  if(k==='id') return document.getElementById(v);
  if(k==='label') return byLabel(v);
  if(k==='css') return document.querySelector(v);
  if(k==='role'){ var m=/^([^\[]+)\[(.*)\]$/.exec(v); if(!m) return null;
    var all=document.querySelectorAll('a,button,input,select,textarea,[role],summary,label');
    for(var j=0;j<all.length;j++){ if(role(all[j])===m[1]&&name(all[j])===m[2]) return all[j]; } }
  }catch(e){} return null; }
function words(d){ var v=d.slice(d.indexOf(':')+1); return v.toLowerCase().split(/[^a-z0-9]+/).filter(function(w){return w.length>1;}); }
function hunt(d){ var ws=words(d); if(!ws.length) return null;
  var all=document.querySelectorAll('a,button,input,select,textarea,[role],summary'); var best=null;
  for(var j=0;j<all.length;j++){ var e=all[j]; if(!vis(e)) continue;
    var hay=[e.getAttribute('data-testid'),e.id,e.getAttribute('name'),e.getAttribute('aria-label'),
      e.textContent,e.getAttribute('placeholder'),e.labels&&e.labels[0]&&e.labels[0].textContent].join(' ').toLowerCase();
    var ok=ws.every(function(w){return hay.indexOf(w)>=0;}); if(ok){ best=e; break; } }
  return best; }
return descs.map(function(d, i){
  var e=exact(d), searched=false;
  if((!e||!vis(e)) && search[i]){ var h=hunt(d); if(h){ e=h; searched=true; } }
  if(!e) return {found:false,usable:false,x:0,y:0};
  var u=vis(e); if(u&&e.scrollIntoViewIfNeeded) e.scrollIntoViewIfNeeded();
  var r=e.getBoundingClientRect(); var tg=e.tagName.toLowerCase();
  var quiet=tg==='textarea'||tg==='select'||e.isContentEditable||(tg==='input'&&!/^(button|submit|reset|image|checkbox|radio|file|color|range)$/i.test(e.type||'text'));
  var control=!!e.closest('a[href],button,summary,label,select,input,textarea,[role=button],[role=link],[role=menuitem],[role=tab],[role=checkbox],[role=radio],[role=switch],[onclick]');
  return {found:true,usable:u,x:r.x+r.width/2,y:r.y+r.height/2,searched:searched,quiet:quiet,control:control}; });
})"#;

/// A simulated user's walk against one build.
pub struct Walk<'a> {
    pub model: &'a Model,
    pub goals: &'a [Goal],
    pub config: &'a UserConfig,
    pub seed: u64,
    pub user: u64,
}

impl Walk<'_> {
    fn key(&self, purpose: Purpose, state: StateId, visit: u64) -> Key {
        Key {
            seed: self.seed,
            user: self.user,
            purpose,
            state: state as u64,
            visit,
            item: 0,
        }
    }

    /// The device this user browses with, drawn from the model's device mix.
    pub fn tab_options(&self) -> TabOptions {
        let dist: Vec<(usize, f64)> = self
            .model
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| (i, d.sessions as f64))
            .collect();
        let mut opts = TabOptions {
            capture: true,
            init_script: Some(seeded_random_script(self.seed, self.user)),
            ..TabOptions::default()
        };
        if let Some(i) = choose(self.key(Purpose::Device, START, 0), &dist, |i| i as u64) {
            let d = &self.model.devices[i];
            opts.width = d.w.max(320);
            opts.height = d.h.max(320);
            opts.touch = d.touch;
        }
        opts
    }

    /// The model's history for what the recording shows so far.
    fn history(&self, cooked: &CookedSession) -> Vec<StateId> {
        let mut h = Vec::with_capacity(cooked.actions.len() + 2);
        h.push(START);
        for (i, a) in cooked.actions.iter().enumerate() {
            h.push(
                self.model
                    .state_id(&a.route, a.kind, a.target.as_deref())
                    .unwrap_or(UNKNOWN_STATE),
            );
            if cooked.converted_after == Some(i) {
                h.push(CONVERTED);
            }
        }
        h
    }

    /// The first page: a parameter-free route the model says sessions start on.
    pub fn entry_path(&self) -> String {
        let dist: Vec<(StateId, f64)> = self
            .model
            .next_distribution(&[START], None)
            .into_iter()
            .filter(|&(id, _)| {
                self.model.state(id).is_some_and(|s| {
                    s.kind == Some(ActionKind::Navigate)
                        && s.route.as_deref().is_some_and(|r| !r.contains(':'))
                })
            })
            .collect();
        choose(self.key(Purpose::Next, START, 0), &dist, |id| id as u64)
            .and_then(|id| self.model.state(id))
            .and_then(|s| s.route.clone())
            .unwrap_or_else(|| "/".to_string())
    }

    /// The user's plan: the walk it would take on a page where every target it wants is
    /// there and every action lands, drawn with the same keys as the live walk (so the
    /// plan is what pairing holds fixed between two builds). A click may lead to any next
    /// state, navigations included, as in the model's own walks. No browser involved.
    pub fn plan(&self) -> Vec<Planned> {
        let mut history = vec![START];
        let mut visits: HashMap<StateId, u64> = HashMap::new();
        let mut out = Vec::new();
        for _ in 0..self.config.max_steps {
            let current = *history.last().unwrap_or(&START);
            let visit = {
                let v = visits.entry(current).or_insert(0);
                *v += 1;
                *v - 1
            };
            let dist = self.model.next_distribution(&history, None);
            let Some(choice) = choose(self.key(Purpose::Next, current, visit), &dist, |id| {
                id as u64
            }) else {
                break;
            };
            if choice == END {
                break;
            }
            let think_ms = self.think_ms(choice, visit);
            let value = self
                .model
                .state(choice)
                .filter(|s| s.kind == Some(ActionKind::Input))
                .map(|_| self.typed_value(choice, visit));
            out.push(Planned {
                state: choice,
                think_ms,
                value,
            });
            history.push(choice);
        }
        out
    }

    /// Runs the walk in a fresh tab against `base_url` and returns the recorded session.
    pub async fn run(
        &self,
        chromium: &Chromium,
        base_url: &str,
    ) -> Result<SimSession, DriverError> {
        let mut tab = chromium.open(&self.tab_options()).await?;
        let result = self.walk(&tab, base_url).await;
        // Close as a person would, so capture.js flushes on pagehide, then collect.
        let _ = tab.close_page().await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut batches = tab.take_batches();
        batches.extend(chromium.dispose(tab).await);
        let (exit, steps, browser_actions) = result?;
        let sid = batches
            .first()
            .map(|b| b.sid.clone())
            .unwrap_or_else(|| format!("sim-{}", self.user));
        let cooked = cook_session(&sid, &batches, self.goals);
        Ok(SimSession {
            user: self.user,
            exit,
            steps,
            browser_actions,
            cooked,
            batches,
        })
    }

    /// Asks capture.js to hand over what it has, waits until the binding delivered it, and
    /// cooks the recording so far.
    async fn flush_and_cook(&self, tab: &Tab) -> CookedSession {
        let handed = tab
            .eval::<u64>("window.understudy ? window.understudy('flush') : null")
            .await
            .ok()
            .flatten()
            .unwrap_or(0) as usize;
        // Binding calls arrive as CDP events, a moment after the evaluation's answer.
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut seen = tab.batches();
        while seen.len() < handed && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
            seen = tab.batches();
        }
        let sid = seen.first().map(|b| b.sid.clone()).unwrap_or_default();
        cook_session(&sid, &seen, self.goals)
    }

    async fn walk(&self, tab: &Tab, base_url: &str) -> Result<(Exit, usize, usize), DriverError> {
        let base = base_url.trim_end_matches('/');
        let entry = self.entry_path();
        if let Err(e) = tab.goto(&format!("{base}{entry}")).await {
            return match e {
                DriverError::Unreachable { .. } => Err(e),
                other => Err(other),
            };
        }
        let mut acts = 1usize;
        tab.settle(
            Duration::from_millis(self.config.quiet_ms),
            Duration::from_millis(self.patience(START, 0) as u64),
        )
        .await?;
        let mut visits: HashMap<StateId, u64> = HashMap::new();
        for step in 0..self.config.max_steps {
            let t_step = Instant::now();
            let cooked = self.flush_and_cook(tab).await;
            let ms_cook = t_step.elapsed().as_secs_f64() * 1000.0;
            let history = self.history(&cooked);
            let current = *history.last().unwrap_or(&START);
            let visit = {
                let v = visits.entry(current).or_insert(0);
                *v += 1;
                *v - 1
            };
            let route = cooked
                .actions
                .last()
                .map(|a| a.route.clone())
                .unwrap_or_default();
            let candidates = self.candidates(&route);
            if candidates.is_empty() {
                return Ok((Exit::Done, step, acts));
            }
            let descs: Vec<&str> = candidates
                .iter()
                .map(|&id| {
                    self.model
                        .state(id)
                        .and_then(|s| s.target.as_deref())
                        .unwrap_or("")
                })
                .collect();
            let dist = self.model.next_distribution(&history, Some(&candidates));
            tracing::debug!(user = self.user, step, ?history, route = %route, ?dist, "choosing");
            let Some(choice) = choose(self.key(Purpose::Next, current, visit), &dist, |id| {
                id as u64
            }) else {
                return Ok((Exit::Done, step, acts));
            };
            if choice == END {
                return Ok((Exit::Done, step, acts));
            }
            let state = self.model.state(choice).cloned();
            let Some(state) = state else {
                return Ok((Exit::Done, step, acts));
            };
            let kind = state.kind.unwrap_or(ActionKind::Click);
            let pos = candidates.iter().position(|&c| c == choice).unwrap_or(0);
            let target = descs[pos];

            // Think before acting.
            let t_think = Instant::now();
            self.think(choice, visit).await;
            let ms_think = t_think.elapsed().as_secs_f64() * 1000.0;
            let t_act = Instant::now();

            match kind {
                ActionKind::Scroll => {
                    let dy = 200.0 + 600.0 * self.key(Purpose::Search, choice, visit).uniform();
                    tab.scroll_by(dy).await?;
                    acts += 1;
                }
                ActionKind::Back => {
                    tab.eval::<bool>("(history.back(), true)").await?;
                    acts += 1;
                    if !self.settle_within_patience(tab, choice, visit).await? {
                        return Ok((Exit::Impatient, step, acts));
                    }
                }
                ActionKind::Click | ActionKind::Input => {
                    let Some(at) = self.find(tab, target).await? else {
                        return Ok((Exit::TargetMissing, step, acts));
                    };
                    if kind == ActionKind::Input {
                        acts += self.fill(tab, choice, visit, &at).await?;
                    } else {
                        match self.click(tab, choice, visit, &at).await? {
                            (Some(exit), n) => return Ok((exit, step, acts + n)),
                            (None, n) => acts += n,
                        }
                    }
                }
                // Observed, never chosen (the candidate list excludes them).
                ActionKind::Navigate | ActionKind::Submit => {}
            }
            tracing::debug!(
                user = self.user,
                step,
                ms_cook,
                ms_think,
                ms_act = t_act.elapsed().as_secs_f64() * 1000.0,
                kind = ?kind,
                target,
                "step timing"
            );
        }
        Ok((Exit::MaxSteps, self.config.max_steps, acts))
    }

    /// States the user may choose on `route`: clicks, inputs, scrolls and back.
    fn candidates(&self, route: &str) -> Vec<StateId> {
        self.model
            .states()
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.route.as_deref() == Some(route)
                    && matches!(
                        s.kind,
                        Some(ActionKind::Click | ActionKind::Input | ActionKind::Scroll)
                            | Some(ActionKind::Back)
                    )
            })
            .map(|(i, _)| i as StateId)
            .collect()
    }

    async fn find(&self, tab: &Tab, target: &str) -> Result<Option<Found>, DriverError> {
        // Look as a person does: the exact element, then (after a moment for the page to
        // catch up) by role, label and words.
        for attempt in 0..2 {
            let js = format!(
                "{RESOLVE_JS}({}, [{}])",
                serde_json::to_string(&[target]).unwrap_or_default(),
                attempt == 1
            );
            if let Some(mut found) = tab.eval::<Vec<Found>>(&js).await? {
                if let Some(f) = found.pop() {
                    if f.found && f.usable {
                        if f.searched {
                            tracing::debug!(target, "found by search");
                        }
                        return Ok(Some(f));
                    }
                }
            }
            if attempt == 0 {
                tab.settle(
                    Duration::from_millis(self.config.quiet_ms),
                    Duration::from_millis(500),
                )
                .await?;
            }
        }
        Ok(None)
    }

    /// The think time before acting on `state` (fitted, × `time_scale`, capped), ms.
    fn think_ms(&self, state: StateId, visit: u64) -> f64 {
        let z = self.key(Purpose::Think, state, visit).normal();
        (self.model.think_time(state).at_z(z) * self.config.time_scale)
            .min(self.config.max_think_ms)
            .max(0.0)
    }

    /// The value typed into the field of `state`: a synthetic value of a drawn class.
    fn typed_value(&self, state: StateId, visit: u64) -> String {
        let classes = self.model.value_class_distribution(state);
        let class = choose(self.key(Purpose::InputClass, state, visit), &classes, |c| {
            c as u64
        })
        .unwrap_or(ValueClass::ShortText);
        synthetic_value(class, self.key(Purpose::InputValue, state, visit))
    }

    async fn think(&self, state: StateId, visit: u64) {
        let ms = self.think_ms(state, visit);
        if ms >= 1.0 {
            tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)).await;
        }
    }

    fn patience(&self, state: StateId, visit: u64) -> f64 {
        let z = self.key(Purpose::Patience, state, visit).normal();
        self.config.patience_median_ms * (self.config.patience_sigma * z).exp()
    }

    /// Waits for the page to settle within the user's patience; `false` if it ran out.
    async fn settle_within_patience(
        &self,
        tab: &Tab,
        state: StateId,
        visit: u64,
    ) -> Result<bool, DriverError> {
        let patience = Duration::from_millis(self.patience(state, visit) as u64);
        let s = tab
            .settle(Duration::from_millis(self.config.quiet_ms), patience)
            .await?;
        Ok(!s.timed_out)
    }

    async fn mark(&self, tab: &Tab) -> Result<Instant, DriverError> {
        let at = Instant::now();
        tab.eval::<bool>(
            "(() => { const p = window.__usProbe; if (p) { p.mark = performance.now(); \
             p.markStarted = p.started; p.markTrouble = p.errors + p.failed; } return true; })()",
        )
        .await
        .map(|_| at)
    }

    /// How many JS errors and failed requests the page has had since [`Walk::mark`]; 0 when
    /// the document was replaced (a new page starts with a clean slate).
    async fn trouble_since_mark(&self, tab: &Tab) -> Result<u64, DriverError> {
        let n = tab
            .eval::<u64>(
                "(() => { const p = window.__usProbe; if (!p || p.markTrouble === undefined) return 0; \
                 return Math.max(0, p.errors + p.failed - p.markTrouble); })()",
            )
            .await?;
        Ok(n.unwrap_or(0))
    }

    /// After a reaction: if it brought JS errors or failed requests, the user may give up,
    /// as recorded users left after a dead click (the model's `retry.p_leave`, 0.5 when the
    /// recordings had no such moment). Each troubled click is its own draw, so a user who
    /// keeps failing leaves soon.
    async fn after_reaction(
        &self,
        tab: &Tab,
        state: StateId,
        visit: u64,
    ) -> Result<Option<Exit>, DriverError> {
        if !self.settle_within_patience(tab, state, visit).await? {
            return Ok(Some(Exit::Impatient));
        }
        if self.trouble_since_mark(tab).await? == 0 {
            return Ok(None);
        }
        let p_leave = self.model.retry.p_leave.unwrap_or(0.5);
        let draw = self.key(Purpose::Leave, state, visit).item(7).uniform();
        Ok((draw < p_leave).then_some(Exit::Failed))
    }

    /// Clicks, waits for a reaction, and retries like recorded users after a dead click.
    /// Returns an exit if the user leaves, and the number of browser actions.
    async fn click(
        &self,
        tab: &Tab,
        state: StateId,
        visit: u64,
        at: &Found,
    ) -> Result<(Option<Exit>, usize), DriverError> {
        let since = self.mark(tab).await?;
        tab.click_at(at.x, at.y).await?;
        let mut clicks = 1;
        if at.quiet {
            // Focusing a field changes nothing visible; nobody waits for it.
            return Ok((None, clicks));
        }
        if self.wait_reaction(tab, since).await? {
            return Ok((self.after_reaction(tab, state, visit).await?, clicks));
        }
        if !at.control {
            // A picture or a bit of text promises nothing: if nothing happens the person
            // just moves on (what follows is the model's next step), no retry, no leaving.
            return Ok((None, clicks));
        }
        // Dead: retry as recorded users did.
        let retry = &self.model.retry;
        let p_retry = retry.p_retry.unwrap_or(0.5);
        if self.key(Purpose::Retry, state, visit).uniform() < p_retry {
            let extra: Vec<(u32, f64)> = retry
                .extra_clicks
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|&(n, c)| (n, c as f64))
                .collect();
            let n = choose(
                self.key(Purpose::Retry, state, visit).item(1),
                &extra,
                |n| n as u64,
            )
            .unwrap_or(2);
            for i in 0..n {
                let z = self
                    .key(Purpose::RetryGap, state, visit)
                    .item(i as u64)
                    .normal();
                let gap = retry.gap.at_z(z).clamp(60.0, 900.0);
                tokio::time::sleep(Duration::from_secs_f64(gap / 1000.0)).await;
                let since = self.mark(tab).await?;
                tab.click_at(at.x, at.y).await?;
                clicks += 1;
                if self.wait_reaction(tab, since).await? {
                    return Ok((self.after_reaction(tab, state, visit).await?, clicks));
                }
            }
        }
        let p_leave = retry.p_leave.unwrap_or(0.5);
        if self.key(Purpose::Leave, state, visit).uniform() < p_leave {
            return Ok((Some(Exit::DeadClick), clicks));
        }
        Ok((None, clicks))
    }

    /// Waits up to `reaction_ms` for any reaction to the last action.
    async fn wait_reaction(&self, tab: &Tab, since: Instant) -> Result<bool, DriverError> {
        tab.reaction_since(since, Duration::from_millis(self.config.reaction_ms))
            .await
    }

    /// Focuses a field, types a synthetic value of a drawn class at a drawn speed, and moves
    /// on (Tab), so capture.js records one settled edit.
    async fn fill(
        &self,
        tab: &Tab,
        state: StateId,
        visit: u64,
        at: &Found,
    ) -> Result<usize, DriverError> {
        let value = self.typed_value(state, visit);
        // A person who just clicked into the field does not click it again.
        let focused = tab
            .eval::<bool>(&format!(
                "(() => {{ const e = document.elementFromPoint({x}, {y}); const a = document.activeElement; \
                 return !!e && !!a && a !== document.body && (e === a || e.contains(a) || a.contains(e)); }})()",
                x = at.x,
                y = at.y
            ))
            .await?
            == Some(true);
        if !focused {
            tab.click_at(at.x, at.y).await?;
        }
        // Replace whatever is there, as a person retyping a field does.
        tab.eval::<bool>(
            "(() => { const e = document.activeElement; if (e && 'value' in e && e.select) e.select(); return true; })()",
        )
        .await?;
        let typing = self.model.typing(state);
        let scale = self.config.time_scale;
        let key = self.key(Purpose::Typing, state, visit);
        if value.is_empty() {
            tab.press("Backspace").await?;
        } else {
            tab.type_text(&value, |i| {
                let ms = typing.inter_key.at_z(key.item(i as u64).normal()) * scale;
                Duration::from_secs_f64(ms.clamp(0.0, 400.0) / 1000.0)
            })
            .await?;
        }
        tab.press("Tab").await?;
        Ok(2 + value.chars().count())
    }
}

/// A made-up value of a class: never a recorded value, since none was ever recorded.
pub fn synthetic_value(class: ValueClass, key: Key) -> String {
    let n = (key.uniform() * 1_000_000.0) as u64;
    match class {
        ValueClass::Empty => String::new(),
        ValueClass::Email => format!("sim.user{n}@example.com"),
        ValueClass::BadEmail => format!("sim.user{n}@example"),
        ValueClass::Number => format!("{}", 1 + n % 9999),
        ValueClass::Phone => format!("+1 555 {:07}", n % 10_000_000),
        // Public test numbers that pass the Luhn check.
        ValueClass::Card => [
            "4242 4242 4242 4242",
            "5555 5555 5555 4444",
            "3782 822463 10005",
        ][n as usize % 3]
            .to_string(),
        ValueClass::ShortText => {
            ["Alex Morgan", "Sam Lee", "Jo Park", "Kim Diaz"][n as usize % 4].to_string()
        }
        ValueClass::LongText => {
            "Please leave the parcel at the side door, thank you very much".to_string()
        }
        ValueClass::Date => "2026-12-24".to_string(),
        ValueClass::Choice | ValueClass::Toggle | ValueClass::Other => format!("x{}", n % 100),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_values_have_their_class_shape() {
        let k = Key {
            seed: 1,
            user: 2,
            purpose: Purpose::InputValue,
            state: 3,
            visit: 0,
            item: 0,
        };
        assert!(synthetic_value(ValueClass::Email, k).contains('@'));
        assert!(synthetic_value(ValueClass::Number, k)
            .parse::<u64>()
            .is_ok());
        assert!(synthetic_value(ValueClass::Empty, k).is_empty());
        assert_eq!(
            synthetic_value(ValueClass::Email, k),
            synthetic_value(ValueClass::Email, k)
        );
    }

    #[test]
    fn synthetic_cards_pass_the_luhn_check() {
        let luhn = |v: &str| {
            let d: Vec<u32> = v.chars().filter_map(|c| c.to_digit(10)).collect();
            let sum: u32 = d
                .iter()
                .rev()
                .enumerate()
                .map(|(i, &n)| {
                    if i % 2 == 1 {
                        (2 * n) % 10 + (2 * n) / 10
                    } else {
                        n
                    }
                })
                .sum();
            (12..=19).contains(&d.len()) && sum % 10 == 0
        };
        for user in 0..20 {
            let k = Key {
                seed: 1,
                user,
                purpose: Purpose::InputValue,
                state: 3,
                visit: 0,
                item: 0,
            };
            let v = synthetic_value(ValueClass::Card, k);
            assert!(luhn(&v), "{v}");
        }
        assert!(!luhn("4242 4242 4242 4241"));
    }

    fn walk(model: &Model, seed: u64, user: u64) -> Walk<'_> {
        static CONFIG: std::sync::OnceLock<UserConfig> = std::sync::OnceLock::new();
        Walk {
            model,
            goals: &[],
            config: CONFIG.get_or_init(UserConfig::default),
            seed,
            user,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Same seed, same plan: a user's path, think times, typed values, device and
        /// entry page are pure functions of (seed, user), whoever else runs and in
        /// whatever order.
        #[test]
        fn same_seed_gives_the_same_plan(seed in 0u64..1_000_000, user in 0u64..10_000, other in 0u64..10_000) {
            let m = crate::model::tests::small_model();
            let a = walk(m, seed, user);
            let first = a.plan();
            // Another user's plan in between changes nothing.
            let _ = walk(m, seed, other).plan();
            let b = walk(m, seed, user);
            proptest::prop_assert_eq!(&first, &b.plan());
            proptest::prop_assert_eq!(a.entry_path(), b.entry_path());
            let (ta, tb) = (a.tab_options(), b.tab_options());
            proptest::prop_assert_eq!((ta.width, ta.height, ta.touch), (tb.width, tb.height, tb.touch));
            proptest::prop_assert_eq!(ta.init_script, tb.init_script);
            proptest::prop_assert!(first.len() <= UserConfig::default().max_steps);
        }
    }

    #[test]
    fn different_seeds_give_different_plans() {
        let m = crate::model::tests::small_model();
        let plans: std::collections::HashSet<String> = (0..20)
            .map(|seed| format!("{:?}", walk(m, seed, 1).plan()))
            .collect();
        assert!(plans.len() > 10, "{} distinct plans of 20", plans.len());
    }

    #[test]
    fn seeded_random_is_per_user() {
        assert_eq!(seeded_random_script(1, 2), seeded_random_script(1, 2));
        assert_ne!(seeded_random_script(1, 2), seeded_random_script(1, 3));
    }
}
