//! The publish and subscribe forms: text fields, focus, and validation as the user types.
//!
//! Validation uses the library's own checks ([`Topic::with_limits`], [`Filter::with_limits`], the `FromStr` of
//! [`OverflowPolicy`], the capacity limits of [`SubscriptionOptions`]) and shows the library's error
//! text, so what the form accepts is exactly what the broker accepts. A field's error is shown once the
//! field has been edited, or for every field once the user tried to submit; an invalid form stays open.

use crossterm::event::{Event as CrosstermEvent, KeyCode, KeyEvent};
use switchyard::{
    Filter, OverflowPolicy, Priority, PublishOptions, SubscribeError, SubscriptionOptions, Topic,
    TopicLimits,
};
use tui_input::Input;
use tui_input::backend::crossterm::to_input_request;

use super::link::{PublishRequest, SubscribeRequest};

/// The most messages one publish request may send, so a typo cannot keep the broker busy for minutes.
pub const MAX_PUBLISH_COUNT: u64 = 100_000;

/// One labelled text field.
#[derive(Debug, Clone)]
pub struct Field {
    /// Shown left of the value.
    pub label: &'static str,
    /// Shown under the form while this field has focus.
    pub hint: &'static str,
    /// The text and its cursor.
    pub input: Input,
    /// Whether the user changed it since the form opened.
    pub edited: bool,
}

impl Field {
    fn new(label: &'static str, hint: &'static str, value: &str) -> Self {
        Self {
            label,
            hint,
            input: Input::new(value.to_string()),
            edited: false,
        }
    }

    /// The current text.
    pub fn value(&self) -> &str {
        self.input.value()
    }
}

/// Which form this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    /// `p`: topic, payload, count.
    Publish,
    /// `s`: filter, capacity, policy, name.
    Subscribe,
    /// `w`: the topic whose receivers to list.
    Explain,
}

/// A field that failed validation, and the library's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Index of the field in [`Form::fields`].
    pub field: usize,
    /// What is wrong, in the library's words.
    pub message: String,
}

/// What a valid form asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// Publish.
    Publish(PublishRequest),
    /// Subscribe.
    Subscribe(SubscribeRequest),
    /// List the subscriptions a publish on `topic` would reach.
    Explain {
        /// The topic.
        topic: String,
    },
}

/// What a key did to a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormOutcome {
    /// Still editing.
    Editing,
    /// Esc: close without doing anything.
    Cancelled,
    /// Enter on a valid form.
    Submitted(Submission),
}

/// A form: its fields, which one has focus, and whether a submit was attempted.
#[derive(Debug, Clone)]
pub struct Form {
    /// Publish or subscribe.
    pub kind: FormKind,
    /// The fields, in tab order.
    pub fields: Vec<Field>,
    /// The focused field.
    pub focus: usize,
    /// Whether Enter was pressed on an invalid form (then every field's error shows).
    pub attempted: bool,
}

impl Form {
    /// The publish form, empty but for a count of 1.
    pub fn publish() -> Self {
        Self {
            kind: FormKind::Publish,
            fields: vec![
                Field::new(
                    "Topic",
                    "a topic such as stocks/AAPL/price (no wildcards)",
                    "",
                ),
                Field::new("Payload", "any text, sent as UTF-8 bytes", ""),
                Field::new("Count", "how many times to publish it (1 to 100000)", "1"),
                Field::new(
                    "Priority",
                    "low | normal | high | critical: receivers take higher first",
                    "normal",
                ),
                Field::new(
                    "Retain",
                    "yes keeps it as the topic's last message (empty payload clears)",
                    "no",
                ),
            ],
            focus: 0,
            attempted: false,
        }
    }

    /// The subscribe form, with the default capacity and policy filled in.
    pub fn subscribe() -> Self {
        Self {
            kind: FormKind::Subscribe,
            fields: vec![
                Field::new(
                    "Filter",
                    "+ (or *) matches one level, # any number at the end: alerts/#",
                    "",
                ),
                Field::new(
                    "Capacity",
                    "queue size in messages: how far this subscription may fall behind",
                    &SubscriptionOptions::DEFAULT_CAPACITY.to_string(),
                ),
                Field::new(
                    "Policy",
                    "drop-newest | drop-oldest | block | block:250ms",
                    "drop-newest",
                ),
                Field::new("Name", "optional; shown in the table (default s<id>)", ""),
                Field::new(
                    "Durable",
                    "yes outlives its consumer and is saved with --state (needs a name)",
                    "no",
                ),
                Field::new(
                    "Retained",
                    "yes receives the retained messages matching the filter first",
                    "no",
                ),
            ],
            focus: 0,
            attempted: false,
        }
    }

    /// The "who gets this topic?" form: one topic.
    pub fn explain() -> Self {
        Self {
            kind: FormKind::Explain,
            fields: vec![Field::new(
                "Topic",
                "a topic such as stocks/AAPL/price: Enter lists who would receive it",
                "",
            )],
            focus: 0,
            attempted: false,
        }
    }

    /// Opens the form again as it was left: values kept, errors hidden until the next edit or submit.
    pub fn reopen(&mut self) {
        self.attempted = false;
        self.focus = 0;
        self.fields.iter_mut().for_each(|f| f.edited = false);
    }

    /// The title shown on the form's border.
    pub fn title(&self) -> &'static str {
        match self.kind {
            FormKind::Publish => "Publish",
            FormKind::Subscribe => "Subscribe",
            FormKind::Explain => "Who gets this topic?",
        }
    }

    /// Applies one key: Tab/Shift-Tab/Up/Down move focus, Enter submits, Esc cancels, anything else
    /// edits the focused field.
    pub fn handle_key(&mut self, key: KeyEvent, limits: &TopicLimits) -> FormOutcome {
        let n = self.fields.len();
        match key.code {
            KeyCode::Esc => return FormOutcome::Cancelled,
            KeyCode::Tab | KeyCode::Down => self.focus = (self.focus + 1) % n,
            KeyCode::BackTab | KeyCode::Up => self.focus = (self.focus + n - 1) % n,
            KeyCode::Enter => match self.validate(limits) {
                Ok(submission) => return FormOutcome::Submitted(submission),
                Err(e) => {
                    self.attempted = true;
                    self.focus = e.field;
                }
            },
            _ => {
                if let Some(request) = to_input_request(&CrosstermEvent::Key(key)) {
                    let field = &mut self.fields[self.focus];
                    if field
                        .input
                        .handle(request)
                        .is_some_and(|changed| changed.value)
                    {
                        field.edited = true;
                    }
                }
            }
        }
        FormOutcome::Editing
    }

    /// The error to show now, if any: the first failing field among those edited (all of them after a
    /// submit was attempted).
    pub fn visible_error(&self, limits: &TopicLimits) -> Option<FieldError> {
        let errors = self.errors(limits);
        errors
            .into_iter()
            .find(|e| self.attempted || self.fields[e.field].edited)
    }

    /// Checks every field; the first error, or what the form asks for.
    pub fn validate(&self, limits: &TopicLimits) -> Result<Submission, FieldError> {
        if let Some(e) = self.errors(limits).into_iter().next() {
            return Err(e);
        }
        let v = |i: usize| self.fields[i].value().to_string();
        Ok(match self.kind {
            FormKind::Publish => Submission::Publish(PublishRequest {
                topic: Topic::with_limits(&v(0), limits).map_err(|e| FieldError {
                    field: 0,
                    message: e.to_string(),
                })?,
                payload: v(1),
                count: parse_count(&v(2)).unwrap_or(1),
                options: PublishOptions::new()
                    .priority(v(3).parse().unwrap_or_default())
                    .retain(parse_yes_no(&v(4)).unwrap_or(false)),
            }),
            FormKind::Subscribe => Submission::Subscribe(SubscribeRequest {
                filter: v(0),
                capacity: parse_capacity(&v(1)).unwrap_or(SubscriptionOptions::DEFAULT_CAPACITY),
                policy: v(2).parse().unwrap_or_default(),
                name: Some(v(3).trim().to_string()).filter(|n| !n.is_empty()),
                durable: parse_yes_no(&v(4)).unwrap_or(false),
                receive_retained: parse_yes_no(&v(5)).unwrap_or(false),
            }),
            FormKind::Explain => Submission::Explain { topic: v(0) },
        })
    }

    fn errors(&self, limits: &TopicLimits) -> Vec<FieldError> {
        let v = |i: usize| self.fields[i].value();
        let checks: Vec<(usize, Result<(), String>)> = match self.kind {
            FormKind::Publish => vec![
                (
                    0,
                    Topic::with_limits(v(0), limits)
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                ),
                (2, parse_count(v(2)).map(|_| ())),
                (
                    3,
                    v(3).parse::<Priority>()
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                ),
                (4, parse_yes_no(v(4)).map(|_| ())),
            ],
            FormKind::Subscribe => vec![
                (
                    0,
                    Filter::with_limits(v(0), limits)
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                ),
                (1, parse_capacity(v(1)).map(|_| ())),
                (
                    2,
                    v(2).parse::<OverflowPolicy>()
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                ),
                (
                    3,
                    match parse_yes_no(v(4)) {
                        Ok(true) if v(3).trim().is_empty() => {
                            Err(SubscribeError::DurableNeedsName.to_string())
                        }
                        _ => Ok(()),
                    },
                ),
                (4, parse_yes_no(v(4)).map(|_| ())),
                (5, parse_yes_no(v(5)).map(|_| ())),
            ],
            FormKind::Explain => vec![(
                0,
                Topic::with_limits(v(0), limits)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            )],
        };
        checks
            .into_iter()
            .filter_map(|(field, r)| r.err().map(|message| FieldError { field, message }))
            .collect()
    }
}

fn parse_yes_no(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" => Ok(true),
        "no" | "n" | "false" | "" => Ok(false),
        _ => Err(format!("`{text}` is not yes or no")),
    }
}

fn parse_count(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if (1..=MAX_PUBLISH_COUNT).contains(&n) => Ok(n),
        Ok(n) => Err(format!(
            "count must be from 1 to {MAX_PUBLISH_COUNT}, got {n}"
        )),
        Err(_) => Err(format!("count `{text}` is not a whole number")),
    }
}

/// Parses a capacity with the same limits (and messages) as `Broker::subscribe_with`.
fn parse_capacity(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err(SubscribeError::ZeroCapacity.to_string()),
        Ok(capacity) if capacity > SubscriptionOptions::MAX_CAPACITY => {
            Err(SubscribeError::CapacityTooLarge {
                capacity,
                max: SubscriptionOptions::MAX_CAPACITY,
            }
            .to_string())
        }
        Ok(capacity) => Ok(capacity),
        Err(_) => Err(format!(
            "capacity `{text}` is not a whole number of messages"
        )),
    }
}
