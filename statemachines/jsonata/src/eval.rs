//! The evaluator, structured after jsonata-js so its sequence semantics carry over.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use chrono::{DateTime, Utc};
use indexmap::IndexMap;

use crate::error::Error;
use crate::functions::{self, boolean, lookup_builtin};
use crate::parser::{Kind, Node, SortTerm};
use crate::value::{Flags, Function, Value, deep_equal, stringify};

/// Deeper evaluation than this (usually runaway recursion) is an error, not a stack overflow.
pub(crate) const MAX_EVAL_DEPTH: usize = 10_000;

/// Stack an evaluation may use, measured from where it started. Kept well under the 2 MiB a
/// spawned thread (or a tokio worker) gets, so deep recursion is an error, never a crash.
const STACK_BUDGET: usize = 1024 * 1024;

/// An address in the current stack frame.
#[inline(always)]
fn stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Ranges and generated arrays larger than this are refused (JSONata's own limit).
pub(crate) const MAX_RANGE: f64 = 10_000_000.0;

pub(crate) type Env = Rc<Frame>;

#[derive(Debug, Default)]
pub(crate) struct Frame {
    vars: RefCell<HashMap<String, Value>>,
    parent: Option<Env>,
}

impl Frame {
    pub(crate) fn lookup(&self, name: &str) -> Option<Value> {
        if let Some(v) = self.vars.borrow().get(name) {
            return Some(v.clone());
        }
        self.parent.as_ref().and_then(|p| p.lookup(name))
    }

    pub(crate) fn bind(&self, name: &str, value: Value) {
        self.vars.borrow_mut().insert(name.to_string(), value);
    }
}

/// State of one evaluation.
pub(crate) struct Evaluator {
    depth: Cell<usize>,
    stack_base: usize,
    /// The time `$now()` and `$millis()` report, fixed for the whole evaluation.
    pub now: DateTime<Utc>,
    /// Every frame made, so closures that capture their own frame can be released at the end.
    frames: RefCell<Vec<Weak<Frame>>>,
}

impl Evaluator {
    pub(crate) fn new(now: DateTime<Utc>) -> Self {
        Evaluator {
            depth: Cell::new(0),
            stack_base: stack_position(),
            now,
            frames: RefCell::new(Vec::new()),
        }
    }

    pub(crate) fn frame(&self, parent: Option<&Env>) -> Env {
        let frame = Rc::new(Frame {
            vars: RefCell::new(HashMap::new()),
            parent: parent.cloned(),
        });
        let mut frames = self.frames.borrow_mut();
        if frames.len() > 1024 {
            frames.retain(|w| w.strong_count() > 0);
        }
        frames.push(Rc::downgrade(&frame));
        frame
    }

    /// Breaks reference cycles between frames and the closures stored in them.
    pub(crate) fn release(&self) {
        for frame in self.frames.borrow_mut().drain(..) {
            if let Some(frame) = frame.upgrade() {
                frame.vars.borrow_mut().clear();
            }
        }
    }

    pub(crate) fn eval(&self, node: &Node, input: &Value, env: &Env) -> Result<Value, Error> {
        let depth = self.depth.get() + 1;
        if depth > MAX_EVAL_DEPTH || self.stack_base.abs_diff(stack_position()) > STACK_BUDGET {
            return Err(Error::at(
                "U1001",
                "Stack overflow error: Check for non-terminating recursive function.  Consider rewriting as tail-recursive.",
                node.position,
            ));
        }
        self.depth.set(depth);
        let result = self.eval_node(node, input, env);
        self.depth.set(depth - 1);
        result
    }

    fn eval_node(&self, node: &Node, input: &Value, env: &Env) -> Result<Value, Error> {
        let result = self.eval_kind(node, input, env)?;
        self.finish(node, result, env)
    }

    /// Dispatches on the node kind. Every arm is a tail call, so this frame stays small even
    /// in unoptimised builds, which keeps recursion within the stack budget.
    fn eval_kind(&self, node: &Node, input: &Value, env: &Env) -> Result<Value, Error> {
        match &node.kind {
            Kind::Path {
                steps,
                keep_singleton_array,
            } => self.eval_path(node, steps, *keep_singleton_array, input, env),
            Kind::Binary { op, lhs, rhs } => self.eval_binary(node, op, lhs, rhs, input, env),
            Kind::Name(name) => Ok(lookup(input, name)),
            Kind::Str(s) => Ok(Value::string(s.as_ref())),
            Kind::Num(n) => Ok(Value::Number(*n)),
            Kind::Value(lit) => Ok(literal(*lit)),
            Kind::Wildcard => Ok(wildcard(input)),
            Kind::Descendant => Ok(descendants(input)),
            Kind::Variable(name) => Ok(variable(name, input, env)),
            Kind::Regex(re) => Ok(Value::Regex(re.clone())),
            Kind::ObjectCons(pairs) => self.eval_group(pairs, input, env, node.position),
            Kind::Call {
                procedure,
                args,
                partial,
            } => self.eval_call(node, procedure, args, *partial, input, env, None),
            Kind::Lambda(def) => Ok(Value::Function(Rc::new(Function::Lambda {
                def: def.clone(),
                env: env.clone(),
                input: input.clone(),
            }))),
            Kind::Sort(terms) => self.eval_sort(terms, input, env),
            Kind::Neg(operand) => self.eval_neg(node, operand, input, env),
            Kind::ArrayCons(items) => self.eval_array(node, items, input, env),
            Kind::Condition {
                cond,
                then,
                otherwise,
            } => self.eval_condition(cond, then, otherwise.as_deref(), input, env),
            Kind::Block(exprs) => self.eval_block(exprs, input, env),
            Kind::Bind { name, value } => self.eval_bind(name, value, input, env),
            Kind::Apply { lhs, rhs } => self.eval_apply(node, lhs, rhs, input, env),
            Kind::Placeholder => Err(Error::at(
                "S0201",
                "Syntax error: \"?\" is only allowed as a function argument",
                node.position,
            )),
        }
    }

    /// Applies a node's predicates and grouping, and unwraps sequences.
    #[inline(never)]
    fn finish(&self, node: &Node, result: Value, env: &Env) -> Result<Value, Error> {
        let mut result = result;
        for predicate in &node.predicates {
            result = self.filter(predicate, result, env)?;
        }
        if !matches!(node.kind, Kind::Path { .. })
            && let Some(group) = &node.group
        {
            result = self.eval_group(group, &result, env, node.position)?;
        }

        if let Value::Array(items, flags) = &result
            && flags.sequence
        {
            let mut flags = *flags;
            if node.keep_array {
                flags.keep_singleton = true;
            }
            result = match items.len() {
                0 => Value::Undefined,
                1 if !flags.keep_singleton => items[0].clone(),
                _ => Value::Array(items.clone(), flags),
            };
        }
        Ok(result)
    }

    #[inline(never)]
    fn eval_neg(
        &self,
        node: &Node,
        operand: &Node,
        input: &Value,
        env: &Env,
    ) -> Result<Value, Error> {
        let v = self.eval(operand, input, env)?;
        if v.is_undefined() {
            return Ok(v);
        }
        match numeric(&v).map_err(|e| e.or_at(node.position))? {
            Some(n) => Ok(Value::Number(-n)),
            None => Err(Error::at(
                "D1002",
                format!(
                    "Cannot negate a non-numeric value: {}",
                    stringify(&v, false)?
                ),
                node.position,
            )),
        }
    }

    #[inline(never)]
    fn eval_array(
        &self,
        node: &Node,
        items: &[Node],
        input: &Value,
        env: &Env,
    ) -> Result<Value, Error> {
        let mut out = Vec::new();
        for item in items {
            let v = self.eval(item, input, env)?;
            match v {
                Value::Undefined => {}
                Value::Array(members, _) if !matches!(item.kind, Kind::ArrayCons(_)) => {
                    out.extend(members.iter().cloned())
                }
                other => out.push(other),
            }
        }
        Ok(Value::Array(
            Rc::new(out),
            Flags {
                cons: node.cons_array,
                ..Flags::default()
            },
        ))
    }

    #[inline(never)]
    fn eval_condition(
        &self,
        cond: &Node,
        then: &Node,
        otherwise: Option<&Node>,
        input: &Value,
        env: &Env,
    ) -> Result<Value, Error> {
        let c = self.eval(cond, input, env)?;
        if boolean(&c) == Some(true) {
            self.eval(then, input, env)
        } else if let Some(o) = otherwise {
            self.eval(o, input, env)
        } else {
            Ok(Value::Undefined)
        }
    }

    #[inline(never)]
    fn eval_block(&self, exprs: &[Node], input: &Value, env: &Env) -> Result<Value, Error> {
        let frame = self.frame(Some(env));
        let mut last = Value::Undefined;
        for e in exprs {
            last = self.eval(e, input, &frame)?;
        }
        Ok(last)
    }

    #[inline(never)]
    fn eval_bind(
        &self,
        name: &str,
        value: &Node,
        input: &Value,
        env: &Env,
    ) -> Result<Value, Error> {
        let v = self.eval(value, input, env)?;
        env.bind(name, v.clone());
        Ok(v)
    }

    #[inline(never)]
    fn eval_apply(
        &self,
        node: &Node,
        lhs: &Node,
        rhs: &Node,
        input: &Value,
        env: &Env,
    ) -> Result<Value, Error> {
        let l = self.eval(lhs, input, env)?;
        if let Kind::Call {
            procedure,
            args,
            partial: false,
        } = &rhs.kind
        {
            return self.eval_call(rhs, procedure, args, false, input, env, Some(l));
        }
        let f = self.eval(rhs, input, env)?;
        if !f.is_function() {
            return Err(Error::at(
                "T2006",
                "The right side of the function application operator ~> must be a function",
                node.position,
            ));
        }
        if l.is_function() {
            return Ok(Value::Function(Rc::new(Function::Chain {
                first: l,
                second: f,
            })));
        }
        self.apply(&f, vec![l], input, env)
            .map_err(|e| e.or_at(node.position))
    }

    fn eval_path(
        &self,
        node: &Node,
        steps: &[Node],
        keep_singleton_array: bool,
        input: &Value,
        env: &Env,
    ) -> Result<Value, Error> {
        let first_is_variable = steps
            .first()
            .is_some_and(|s| matches!(s.kind, Kind::Variable(_)));
        let mut input_seq = if input.is_array() && !first_is_variable {
            input.clone()
        } else {
            Value::sequence(vec![input.clone()])
        };
        let mut result = Value::sequence(Vec::new());
        for (i, step) in steps.iter().enumerate() {
            result = if i == 0 && step.cons_array {
                self.eval(step, &input_seq, env)?
            } else {
                self.eval_step(step, &input_seq, env, i == steps.len() - 1)?
            };
            match &result {
                Value::Undefined => break,
                Value::Array(items, _) if items.is_empty() => break,
                _ => {}
            }
            input_seq = match &result {
                Value::Array(..) => result.clone(),
                other => Value::sequence(vec![other.clone()]),
            };
        }
        if keep_singleton_array {
            let flags = result.flags();
            if flags.cons && !flags.sequence {
                result = Value::sequence(vec![result]);
            }
            let mut flags = result.flags();
            flags.keep_singleton = true;
            result = result.with_flags(flags);
        }
        if let Some(group) = &node.group {
            result = self.eval_group(group, &result, env, node.position)?;
        }
        Ok(result)
    }

    fn eval_step(&self, step: &Node, input: &Value, env: &Env, last: bool) -> Result<Value, Error> {
        if let Kind::Sort(terms) = &step.kind {
            let mut result = self.eval_sort(terms, input, env)?;
            for stage in &step.stages {
                result = self.filter(stage, result, env)?;
            }
            return Ok(result);
        }
        let items = match input {
            Value::Array(items, _) => items.clone(),
            other => Rc::new(vec![other.clone()]),
        };
        let mut results = Vec::new();
        for item in items.iter() {
            let mut res = self.eval(step, item, env)?;
            for stage in &step.stages {
                res = self.filter(stage, res, env)?;
            }
            if !res.is_undefined() {
                results.push(res);
            }
        }
        if last && results.len() == 1 && results[0].is_array() && !results[0].is_sequence() {
            return Ok(results.swap_remove(0));
        }
        let mut flat = Vec::new();
        for res in results {
            match res {
                Value::Array(members, f) if !f.cons => flat.extend(members.iter().cloned()),
                other => flat.push(other),
            }
        }
        Ok(Value::sequence(flat))
    }

    pub(crate) fn filter(&self, predicate: &Node, input: Value, env: &Env) -> Result<Value, Error> {
        let items: Rc<Vec<Value>> = match &input {
            Value::Array(items, _) => items.clone(),
            other => Rc::new(vec![other.clone()]),
        };
        let len = items.len() as f64;
        let mut out = Vec::new();
        if let Kind::Num(n) = predicate.kind
            && predicate.predicates.is_empty()
        {
            let mut index = n.floor();
            if index < 0.0 {
                index += len;
            }
            if index >= 0.0
                && let Some(item) = items.get(index as usize)
            {
                match item {
                    Value::Array(..) => return Ok(item.clone()),
                    Value::Undefined => {}
                    other => out.push(other.clone()),
                }
            }
            return Ok(Value::sequence(out));
        }
        for (index, item) in items.iter().enumerate() {
            let res = self.eval(predicate, item, env)?;
            let indexes: Option<Vec<f64>> = match &res {
                Value::Number(n) => Some(vec![*n]),
                Value::Array(members, _)
                    if !members.is_empty()
                        && members.iter().all(|m| matches!(m, Value::Number(_))) =>
                {
                    Some(
                        members
                            .iter()
                            .filter_map(|m| match m {
                                Value::Number(n) => Some(*n),
                                _ => None,
                            })
                            .collect(),
                    )
                }
                _ => None,
            };
            match indexes {
                Some(indexes) => {
                    for n in indexes {
                        numeric(&Value::Number(n))?;
                        let mut i = n.floor();
                        if i < 0.0 {
                            i += len;
                        }
                        if i == index as f64 {
                            out.push(item.clone());
                        }
                    }
                }
                None => {
                    if boolean(&res) == Some(true) {
                        out.push(item.clone());
                    }
                }
            }
        }
        Ok(Value::sequence(out))
    }

    fn eval_group(
        &self,
        pairs: &[(Node, Node)],
        input: &Value,
        env: &Env,
        position: usize,
    ) -> Result<Value, Error> {
        let mut items: Vec<Value> = match input {
            Value::Array(items, _) => items.as_ref().clone(),
            other => vec![other.clone()],
        };
        if items.is_empty() {
            items.push(Value::Undefined);
        }
        let mut groups: IndexMap<String, (Value, usize)> = IndexMap::new();
        for item in &items {
            for (index, (key_expr, _)) in pairs.iter().enumerate() {
                let key = self.eval(key_expr, item, env)?;
                let key = match key {
                    Value::Undefined => continue,
                    Value::String(s) => s,
                    other => {
                        return Err(Error::at(
                            "T1003",
                            format!(
                                "Key in object structure must evaluate to a string; got: {}",
                                stringify(&other, false)?
                            ),
                            key_expr.position.max(position),
                        ));
                    }
                };
                match groups.get_mut(key.as_ref()) {
                    Some((data, existing)) => {
                        if *existing != index {
                            return Err(Error::at(
                                "D1009",
                                format!("Multiple key definitions evaluate to same key: \"{key}\""),
                                position,
                            ));
                        }
                        *data = functions::append(data.clone(), item.clone());
                    }
                    None => {
                        groups.insert(key.to_string(), (item.clone(), index));
                    }
                }
            }
        }
        let mut result = IndexMap::new();
        for (key, (data, index)) in groups {
            let v = self.eval(&pairs[index].1, &data, env)?;
            if !v.is_undefined() {
                result.insert(key, v);
            }
        }
        Ok(Value::Object(Rc::new(result)))
    }

    fn eval_sort(&self, terms: &[SortTerm], input: &Value, env: &Env) -> Result<Value, Error> {
        let items = match input {
            Value::Undefined => return Ok(Value::Undefined),
            Value::Array(items, _) => items.as_ref().clone(),
            other => vec![other.clone()],
        };
        if items.len() <= 1 {
            return Ok(input.clone());
        }
        // evaluate every key once, then sort stably
        let mut keyed = Vec::with_capacity(items.len());
        for item in items {
            let mut keys = Vec::with_capacity(terms.len());
            for term in terms {
                let k = self.eval(&term.expr, &item, env)?;
                match &k {
                    Value::Undefined | Value::Number(_) | Value::String(_) => {}
                    _ => {
                        return Err(Error::at(
                            "T2008",
                            "The expressions within an order-by clause must evaluate to numeric or string values",
                            term.expr.position,
                        ));
                    }
                }
                keys.push(k);
            }
            keyed.push((keys, item));
        }
        let mut error = None;
        keyed.sort_by(|(a, _), (b, _)| {
            for (i, term) in terms.iter().enumerate() {
                let ord = match (&a[i], &b[i]) {
                    (Value::Undefined, Value::Undefined) => std::cmp::Ordering::Equal,
                    (Value::Undefined, _) => std::cmp::Ordering::Greater,
                    (_, Value::Undefined) => std::cmp::Ordering::Less,
                    (Value::Number(x), Value::Number(y)) => {
                        let o = x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal);
                        if term.descending { o.reverse() } else { o }
                    }
                    (Value::String(x), Value::String(y)) => {
                        let o = x.cmp(y);
                        if term.descending { o.reverse() } else { o }
                    }
                    _ => {
                        error.get_or_insert_with(|| {
                            Error::at(
                                "T2007",
                                "Type mismatch when comparing values in order-by clause",
                                term.expr.position,
                            )
                        });
                        std::cmp::Ordering::Equal
                    }
                };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            std::cmp::Ordering::Equal
        });
        if let Some(e) = error {
            return Err(e);
        }
        Ok(Value::array(keyed.into_iter().map(|(_, v)| v).collect()))
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_call(
        &self,
        node: &Node,
        procedure: &Node,
        args: &[Node],
        partial: bool,
        input: &Value,
        env: &Env,
        applied_to: Option<Value>,
    ) -> Result<Value, Error> {
        let proc = self.eval(procedure, input, env)?;
        let name = match &procedure.kind {
            Kind::Path { steps, .. } => match steps.first().map(|s| &s.kind) {
                Some(Kind::Name(n)) => n.clone(),
                _ => String::new(),
            },
            Kind::Variable(v) => v.clone(),
            _ => String::new(),
        };
        if proc.is_undefined()
            && matches!(procedure.kind, Kind::Path { .. })
            && !name.is_empty()
            && (env.lookup(&name).is_some() || lookup_builtin(&name).is_some())
        {
            return Err(Error::at(
                "T1005",
                format!("Attempted to invoke a non-function. Did you mean ${name}?"),
                node.position,
            ));
        }
        let mut evaluated = Vec::with_capacity(args.len() + 1);
        if let Some(first) = applied_to {
            evaluated.push(Some(first));
        }
        for arg in args {
            if matches!(arg.kind, Kind::Placeholder) {
                evaluated.push(None);
            } else {
                evaluated.push(Some(self.eval(arg, input, env)?));
            }
        }
        if partial {
            if !proc.is_function() {
                return Err(Error::at(
                    "T1008",
                    format!("Attempted to partially apply a non-function: {name}"),
                    node.position,
                ));
            }
            return Ok(Value::Function(Rc::new(Function::Partial {
                func: proc,
                args: evaluated,
            })));
        }
        let evaluated = evaluated
            .into_iter()
            .map(|a| a.unwrap_or(Value::Undefined))
            .collect();
        self.apply(&proc, evaluated, input, env).map_err(|mut e| {
            if e.position.is_none() {
                e.position = Some(node.position);
            }
            e
        })
    }

    /// Calls a function value with arguments.
    pub(crate) fn apply(
        &self,
        proc: &Value,
        args: Vec<Value>,
        input: &Value,
        env: &Env,
    ) -> Result<Value, Error> {
        let Value::Function(f) = proc else {
            return Err(Error::new("T1006", "Attempted to invoke a non-function"));
        };
        match f.as_ref() {
            Function::Lambda {
                def,
                env: closure,
                input: closure_input,
            } => {
                let args = match &def.signature {
                    Some(sig) => sig.validate(args, input, "lambda")?,
                    None => args,
                };
                let frame = self.frame(Some(closure));
                for (i, param) in def.params.iter().enumerate() {
                    frame.bind(param, args.get(i).cloned().unwrap_or(Value::Undefined));
                }
                self.eval(&def.body, closure_input, &frame)
            }
            Function::Builtin(b) => {
                let depth = self.depth.get() + 1;
                if depth > MAX_EVAL_DEPTH
                    || self.stack_base.abs_diff(stack_position()) > STACK_BUDGET
                {
                    return Err(Error::new(
                        "U1001",
                        "Stack overflow error: Check for non-terminating recursive function.  Consider rewriting as tail-recursive.",
                    ));
                }
                self.depth.set(depth);
                let result = b
                    .signature
                    .validate(args, input, b.name)
                    .and_then(|args| (b.func)(self, args, input, env));
                self.depth.set(depth - 1);
                result
            }
            Function::Partial {
                func,
                args: template,
            } => {
                let mut supplied = args.into_iter();
                let full = template
                    .iter()
                    .map(|a| match a {
                        Some(v) => v.clone(),
                        None => supplied.next().unwrap_or(Value::Undefined),
                    })
                    .collect();
                self.apply(func, full, input, env)
            }
            Function::Chain { first, second } => {
                let mid = self.apply(first, args, input, env)?;
                self.apply(second, vec![mid], input, env)
            }
        }
    }

    /// Calls a function from a higher-order builtin, passing only as many arguments as it takes.
    pub(crate) fn call_back(
        &self,
        func: &Value,
        args: Vec<Value>,
        input: &Value,
        env: &Env,
    ) -> Result<Value, Error> {
        let arity = match func {
            Value::Function(f) => f.arity(),
            _ => args.len(),
        };
        let args = args.into_iter().take(arity).collect();
        self.apply(func, args, input, env)
    }

    #[inline(never)]
    fn eval_binary(
        &self,
        node: &Node,
        op: &str,
        lhs: &Node,
        rhs: &Node,
        input: &Value,
        env: &Env,
    ) -> Result<Value, Error> {
        let l = self.eval(lhs, input, env)?;
        let decided = match op {
            "and" => boolean(&l) != Some(true),
            "or" => boolean(&l) == Some(true),
            "??" => !l.is_undefined(),
            "?:" => boolean(&l) == Some(true),
            _ => {
                let r = self.eval(rhs, input, env)?;
                return binary_values(op, &l, &r).map_err(|e| e.or_at(node.position));
            }
        };
        match op {
            "and" | "or" if decided => Ok(Value::Bool(op == "or")),
            "and" | "or" => {
                let r = self.eval(rhs, input, env)?;
                Ok(Value::Bool(boolean(&r) == Some(true)))
            }
            _ if decided => Ok(l),
            _ => self.eval(rhs, input, env),
        }
    }
}

fn literal(lit: crate::lexer::Literal) -> Value {
    match lit {
        crate::lexer::Literal::True => Value::Bool(true),
        crate::lexer::Literal::False => Value::Bool(false),
        crate::lexer::Literal::Null => Value::Null,
    }
}

/// Operators whose both sides are evaluated.
fn binary_values(op: &str, l: &Value, r: &Value) -> Result<Value, Error> {
    match op {
        "+" | "-" | "*" | "/" | "%" => arithmetic(op, l, r),
        "=" => Ok(Value::Bool(
            !l.is_undefined() && !r.is_undefined() && deep_equal(l, r),
        )),
        "!=" => Ok(Value::Bool(
            !l.is_undefined() && !r.is_undefined() && !deep_equal(l, r),
        )),
        "<" | "<=" | ">" | ">=" => compare(op, l, r),
        "&" => {
            let ls = functions::to_string(l)?.unwrap_or_default();
            let rs = functions::to_string(r)?.unwrap_or_default();
            Ok(Value::string(format!("{ls}{rs}")))
        }
        ".." => range(l, r),
        "in" => {
            if l.is_undefined() || r.is_undefined() {
                return Ok(Value::Bool(false));
            }
            let members = r.members();
            Ok(Value::Bool(members.iter().any(|m| {
                !matches!(m, Value::Object(_) | Value::Array(..)) && deep_equal(m, l)
            })))
        }
        other => Err(Error::new(
            "S0201",
            format!("Syntax error: unknown operator \"{other}\""),
        )),
    }
}

/// A number that arithmetic may use: `Ok(None)` for non-numbers, an error for infinities.
pub(crate) fn numeric(v: &Value) -> Result<Option<f64>, Error> {
    match v {
        Value::Number(n) if n.is_nan() => Ok(None),
        Value::Number(n) if n.is_infinite() => Err(Error::new(
            "D1001",
            format!(
                "Number out of range: {}",
                crate::value::js_number_string(*n)
            ),
        )),
        Value::Number(n) => Ok(Some(*n)),
        _ => Ok(None),
    }
}

fn arithmetic(op: &str, l: &Value, r: &Value) -> Result<Value, Error> {
    let ln = numeric(l)?;
    let rn = numeric(r)?;
    if !l.is_undefined() && ln.is_none() {
        return Err(Error::new(
            "T2001",
            format!("The left side of the \"{op}\" operator must evaluate to a number"),
        ));
    }
    if !r.is_undefined() && rn.is_none() {
        return Err(Error::new(
            "T2002",
            format!("The right side of the \"{op}\" operator must evaluate to a number"),
        ));
    }
    let (Some(a), Some(b)) = (ln, rn) else {
        return Ok(Value::Undefined);
    };
    Ok(Value::Number(match op {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        "/" => a / b,
        _ => a % b,
    }))
}

fn compare(op: &str, l: &Value, r: &Value) -> Result<Value, Error> {
    let comparable =
        |v: &Value| matches!(v, Value::Undefined | Value::String(_) | Value::Number(_));
    if !comparable(l) || !comparable(r) {
        return Err(Error::new(
            "T2010",
            format!(
                "The expressions either side of operator \"{op}\" must evaluate to numeric or string values"
            ),
        ));
    }
    if l.is_undefined() || r.is_undefined() {
        return Ok(Value::Undefined);
    }
    let ord = match (l, r) {
        (Value::Number(a), Value::Number(b)) => a.partial_cmp(b),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => {
            return Err(Error::new(
                "T2009",
                format!(
                    "The values {} and {} either side of operator \"{op}\" must be of the same data type",
                    stringify(l, false)?,
                    stringify(r, false)?
                ),
            ));
        }
    };
    let Some(ord) = ord else {
        return Ok(Value::Bool(false));
    };
    use std::cmp::Ordering::*;
    Ok(Value::Bool(match op {
        "<" => ord == Less,
        "<=" => ord != Greater,
        ">" => ord == Greater,
        _ => ord != Less,
    }))
}

fn range(l: &Value, r: &Value) -> Result<Value, Error> {
    let int = |v: &Value| matches!(v, Value::Number(n) if n.fract() == 0.0 && n.is_finite());
    if !l.is_undefined() && !int(l) {
        return Err(Error::new(
            "T2003",
            "The left side of the range operator (..) must evaluate to an integer",
        ));
    }
    if !r.is_undefined() && !int(r) {
        return Err(Error::new(
            "T2004",
            "The right side of the range operator (..) must evaluate to an integer",
        ));
    }
    let (Value::Number(a), Value::Number(b)) = (l, r) else {
        return Ok(Value::Undefined);
    };
    if a > b {
        return Ok(Value::Undefined);
    }
    if b - a + 1.0 > MAX_RANGE {
        return Err(Error::new(
            "D2014",
            format!(
                "The size of the sequence allocated by the range operator (..) must not exceed 1e7.  Attempted to allocate {}.",
                b - a + 1.0
            ),
        ));
    }
    let mut out = Vec::with_capacity((b - a + 1.0) as usize);
    let mut i = *a;
    while i <= *b {
        out.push(Value::Number(i));
        i += 1.0;
    }
    Ok(Value::sequence(out))
}

fn variable(name: &str, input: &Value, env: &Env) -> Value {
    if name.is_empty() {
        match input {
            Value::Array(items, f) if f.outer_wrapper => {
                items.first().cloned().unwrap_or(Value::Undefined)
            }
            other => other.clone(),
        }
    } else if let Some(v) = env.lookup(name) {
        v
    } else if let Some(b) = lookup_builtin(name) {
        Value::Function(Rc::new(Function::Builtin(b)))
    } else {
        Value::Undefined
    }
}

/// `fn.lookup`: a field of an object, or of every object in an array.
pub(crate) fn lookup(input: &Value, key: &str) -> Value {
    match input {
        Value::Array(items, _) => {
            let mut out = Vec::new();
            for item in items.iter() {
                match lookup(item, key) {
                    Value::Undefined => {}
                    Value::Array(members, _) => out.extend(members.iter().cloned()),
                    other => out.push(other),
                }
            }
            Value::sequence(out)
        }
        Value::Object(map) => map.get(key).cloned().unwrap_or(Value::Undefined),
        _ => Value::Undefined,
    }
}

fn flatten_into(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(items, _) => {
            for item in items.iter() {
                flatten_into(item, out);
            }
        }
        other => out.push(other.clone()),
    }
}

fn wildcard(input: &Value) -> Value {
    let input = match input {
        Value::Array(items, f) if f.outer_wrapper && !items.is_empty() => &items[0],
        other => other,
    };
    let mut out = Vec::new();
    // appending an array value makes the result a plain array, as in jsonata-js
    let mut plain = false;
    if let Value::Object(map) = input {
        for value in map.values() {
            match value {
                Value::Array(..) => {
                    flatten_into(value, &mut out);
                    plain = true;
                }
                other => out.push(other.clone()),
            }
        }
    }
    if plain {
        Value::array(out)
    } else {
        Value::sequence(out)
    }
}

fn descendants(input: &Value) -> Value {
    if input.is_undefined() {
        return Value::Undefined;
    }
    let mut out = Vec::new();
    recurse_descendants(input, &mut out);
    if out.len() == 1 {
        out.swap_remove(0)
    } else {
        Value::sequence(out)
    }
}

fn recurse_descendants(input: &Value, out: &mut Vec<Value>) {
    match input {
        Value::Array(items, _) => {
            for item in items.iter() {
                recurse_descendants(item, out);
            }
        }
        Value::Object(map) => {
            out.push(input.clone());
            for v in map.values() {
                recurse_descendants(v, out);
            }
        }
        other => out.push(other.clone()),
    }
}
