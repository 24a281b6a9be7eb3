//! Inbound HTTP adapter (actix-web): the contract's endpoints over the domain's use cases.
