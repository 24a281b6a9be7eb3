//! PostgreSQL metadata adapter (diesel + diesel-async + deadpool).
