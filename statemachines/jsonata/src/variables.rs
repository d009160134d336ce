//! Which variables an expression reads from outside itself.
//!
//! Step Functions evaluates JSONata with the workflow's variables bound; a reference to a
//! variable that is neither bound by the caller, nor by the expression (`:=`, lambda
//! parameters), nor a built-in function is an error there rather than JSONata's silent
//! undefined. The analysis is deliberately generous: a name bound anywhere in the expression
//! counts as bound everywhere in it, so no valid expression is ever reported.

use std::collections::BTreeSet;

use crate::functions::lookup_builtin;
use crate::parser::{Kind, Node};

/// Names (without `$`) the expression reads but neither binds nor finds among the built-ins,
/// in alphabetical order. `$` and `$$` (the context) are never reported.
pub(crate) fn free_variables(root: &Node) -> Vec<String> {
    let mut names = Names::default();
    names.visit(root);
    names
        .referenced
        .into_iter()
        .filter(|name| {
            !name.is_empty()
                && name != "$"
                && !names.bound.contains(name)
                && lookup_builtin(name).is_none()
        })
        .collect()
}

#[derive(Default)]
struct Names {
    referenced: BTreeSet<String>,
    bound: BTreeSet<String>,
}

impl Names {
    fn visit(&mut self, node: &Node) {
        match &node.kind {
            Kind::Variable(name) => {
                self.referenced.insert(name.clone());
            }
            Kind::Path { steps, .. } => steps.iter().for_each(|s| self.visit(s)),
            Kind::Binary { lhs, rhs, .. } | Kind::Apply { lhs, rhs } => {
                self.visit(lhs);
                self.visit(rhs);
            }
            Kind::Neg(inner) => self.visit(inner),
            Kind::ArrayCons(items) | Kind::Block(items) => items.iter().for_each(|i| self.visit(i)),
            Kind::ObjectCons(pairs) => self.visit_pairs(pairs),
            Kind::Condition {
                cond,
                then,
                otherwise,
            } => {
                self.visit(cond);
                self.visit(then);
                if let Some(otherwise) = otherwise {
                    self.visit(otherwise);
                }
            }
            Kind::Bind { name, value } => {
                self.bound.insert(name.clone());
                self.visit(value);
            }
            Kind::Call {
                procedure, args, ..
            } => {
                self.visit(procedure);
                args.iter().for_each(|a| self.visit(a));
            }
            Kind::Lambda(lambda) => {
                self.bound.extend(lambda.params.iter().cloned());
                self.visit(&lambda.body);
            }
            Kind::Sort(terms) => terms.iter().for_each(|t| self.visit(&t.expr)),
            Kind::Name(_)
            | Kind::Str(_)
            | Kind::Num(_)
            | Kind::Value(_)
            | Kind::Wildcard
            | Kind::Descendant
            | Kind::Regex(_)
            | Kind::Placeholder => {}
        }
        node.predicates.iter().for_each(|p| self.visit(p));
        node.stages.iter().for_each(|s| self.visit(s));
        if let Some(group) = &node.group {
            self.visit_pairs(group);
        }
    }

    fn visit_pairs(&mut self, pairs: &[(Node, Node)]) {
        for (key, value) in pairs {
            self.visit(key);
            self.visit(value);
        }
    }
}
