//! Test support: contract suites for every port, test services (PostgreSQL, Garage, project-service stand-in).

pub mod project_standin;
