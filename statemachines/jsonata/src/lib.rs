//! A JSONata evaluator for the States Language's JSONata query language.
