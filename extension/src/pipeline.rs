//! The one pipeline: records → exchanges → every stage in [`STAGES`], in order.
//!
//! Why one: the CLI, the Lambda extension, the fuzz target and the tests must see the
//! same exchanges for the same records, and no report or export may ever see an
//! unmasked secret. Every caller goes through [`Pipeline`]; a new stage over exchanges
//! (gRPC, another kind of masking) is a new [`Stage`] placed in [`STAGES`], and every
//! caller has it.
//!
//! Reassembly comes first ([`Pipeline::run`] over a whole spool; the Lambda extension
//! reassembles incrementally and hands its final exchanges to [`Pipeline::process`]).
//! HTTP/2 decoding is part of it, since it makes exchanges out of records:
//! [`crate::assemble`] hands an HTTP/2 connection's records to [`crate::http2`].
//! Recognition reads the raw requests and keeps only names (gRPC recognition also
//! decodes the messages of a call's bodies into JSON text); masking follows it, so that
//! what it recognised and decoded is masked too; budgets come last, on what will be
//! written.

use crate::assemble::{assemble, Assembly};
use crate::budget::{Budget, BudgetOutcome};
use crate::exchange::Exchange;
use crate::mask::{MaskError, Masker};
use crate::spool::Spool;

/// A step over reassembled exchanges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// AWS calls recognised by their requests ([`crate::aws::recognise_all`]).
    RecogniseAws,
    /// gRPC calls recognised (`application/grpc`), their bodies rewritten into decoded
    /// messages as JSON text, so that masking reads them (`grpc::recognise_all`).
    RecogniseGrpc,
    /// Secrets masked, secret-holding services scrubbed ([`Masker`]).
    Mask,
    /// Bodies, headers and the batch cut to size ([`Budget`]).
    Budget,
}

/// The stages after reassembly, in the order they run.
pub(crate) const STAGES: [Stage; 4] = [
    Stage::RecogniseAws,
    Stage::RecogniseGrpc,
    Stage::Mask,
    Stage::Budget,
];

/// The configured pipeline.
#[derive(Clone, Debug)]
pub struct Pipeline {
    pub masker: Masker,
    pub budget: Budget,
}

impl Pipeline {
    pub fn new(masker: Masker, budget: Budget) -> Self {
        Pipeline { masker, budget }
    }

    /// From the environment (`TAPLINE_MASK_REGEX`, `TAPLINE_SCRUB_DOMAINS`,
    /// `TAPLINE_MAX_*`). An invalid mask pattern is an error: nothing may be written
    /// unmasked.
    pub fn from_env() -> Result<Self, MaskError> {
        Ok(Pipeline::new(Masker::from_env()?, Budget::from_env()))
    }

    /// The defaults, whatever the environment says (the fuzz target, tests).
    pub fn defaults() -> Self {
        // The default pattern is a constant that compiles (the mask module's tests
        // build it); failing here would be a bug in this crate, not in its input.
        let masker = Masker::from_lookup(|_| None).expect("the default mask pattern compiles");
        Pipeline::new(masker, Budget::default())
    }

    /// Every exchange of `spool`, through every stage.
    pub fn run(&self, spool: &Spool) -> Assembly {
        let mut assembly = assemble(spool);
        self.process(&mut assembly.exchanges);
        assembly
    }

    /// Runs every stage over exchanges already reassembled; returns what the budget
    /// did.
    pub fn process(&self, exchanges: &mut [Exchange]) -> BudgetOutcome {
        let mut outcome = BudgetOutcome::default();
        for stage in STAGES {
            match stage {
                Stage::RecogniseAws => crate::aws::recognise_all(exchanges),
                Stage::RecogniseGrpc => crate::grpc::recognise_all(exchanges),
                Stage::Mask => self.masker.mask_all(exchanges),
                Stage::Budget => outcome = self.budget.apply(exchanges),
            }
        }
        outcome
    }
}
