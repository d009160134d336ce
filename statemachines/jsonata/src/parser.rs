//! Pratt parser producing the evaluator's tree directly.
//!
//! The tree has the shape jsonata-js produces after its `processAST` pass: `a.b[0]` becomes a
//! path whose steps carry their filter stages, array constructors at a path's ends are marked
//! so they do not flatten, and `[]` marks the path as keeping singleton arrays.

use std::sync::Arc;

use crate::error::Error;
use crate::lexer::{Lexer, Literal, Tok, Token};
use crate::signature::Signature;

/// Deeper nesting than this is rejected rather than risking the stack.
const MAX_PARSE_DEPTH: usize = 120;

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub position: usize,
    /// `[]` was applied to this step.
    pub keep_array: bool,
    /// An array constructor at the start or end of a path.
    pub cons_array: bool,
    /// Filters applied to the whole value of a non-path expression.
    pub predicates: Vec<Node>,
    /// Filters applied per input item when this node is a path step.
    pub stages: Vec<Node>,
    /// `expr{ key: value }` grouping.
    pub group: Option<Arc<Vec<(Node, Node)>>>,
}

#[derive(Debug, Clone)]
pub(crate) struct SortTerm {
    pub descending: bool,
    pub expr: Node,
}

#[derive(Debug)]
pub(crate) struct LambdaDef {
    pub params: Vec<String>,
    pub signature: Option<Signature>,
    pub body: Node,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Path {
        steps: Vec<Node>,
        keep_singleton_array: bool,
    },
    Name(String),
    Str(Arc<str>),
    Num(f64),
    Value(Literal),
    Wildcard,
    Descendant,
    Variable(String),
    Regex(Arc<regex::Regex>),
    Binary {
        op: &'static str,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    Neg(Box<Node>),
    ArrayCons(Vec<Node>),
    ObjectCons(Arc<Vec<(Node, Node)>>),
    Condition {
        cond: Box<Node>,
        then: Box<Node>,
        otherwise: Option<Box<Node>>,
    },
    Block(Vec<Node>),
    Bind {
        name: String,
        value: Box<Node>,
    },
    Call {
        procedure: Box<Node>,
        args: Vec<Node>,
        partial: bool,
    },
    Lambda(Arc<LambdaDef>),
    Apply {
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    Sort(Vec<SortTerm>),
    Placeholder,
}

impl Node {
    fn new(kind: Kind, position: usize) -> Self {
        Node {
            kind,
            position,
            keep_array: false,
            cons_array: false,
            predicates: Vec::new(),
            stages: Vec::new(),
            group: None,
        }
    }

    fn is_path(&self) -> bool {
        matches!(self.kind, Kind::Path { .. })
    }
}

pub(crate) fn parse(src: &str) -> Result<Node, Error> {
    let tokens = Lexer::new(src).tokenize()?;
    let mut parser = Parser {
        tokens,
        index: 0,
        depth: 0,
    };
    let node = parser.expression(0)?;
    let rest = parser.current();
    if rest.tok != Tok::End {
        return Err(Error::at(
            "S0201",
            format!("Syntax error: {}", describe(&rest.tok)),
            rest.position,
        ));
    }
    Ok(node)
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Op(op) => format!("\"{op}\""),
        Tok::Name(n) | Tok::QuotedName(n) => format!("\"{n}\""),
        Tok::Variable(v) => format!("\"${v}\""),
        Tok::Str(s) => format!("\"{s}\""),
        Tok::Num(n) => format!("\"{n}\""),
        Tok::Value(Literal::True) => "\"true\"".into(),
        Tok::Value(Literal::False) => "\"false\"".into(),
        Tok::Value(Literal::Null) => "\"null\"".into(),
        Tok::Regex { pattern, .. } => format!("\"/{pattern}/\""),
        Tok::End => "end of expression".into(),
    }
}

struct Parser {
    tokens: Vec<Token>,
    index: usize,
    depth: usize,
}

fn infix_power(tok: &Tok) -> usize {
    match tok {
        Tok::Op(op) => match *op {
            "." => 75,
            "[" | "(" | "@" | "#" => 80,
            "{" => 70,
            "?" => 20,
            "+" | "-" | "&" => 50,
            "*" | "/" | "%" => 60,
            "=" | "<" | ">" | "!=" | "<=" | ">=" | "^" | "~>" => 40,
            ":=" => 10,
            "??" | "?:" => 15,
            _ => 0,
        },
        Tok::Name(n) => match n.as_str() {
            "and" => 30,
            "or" => 25,
            "in" => 40,
            _ => 0,
        },
        _ => 0,
    }
}

impl Parser {
    fn current(&self) -> Token {
        self.tokens[self.index.min(self.tokens.len() - 1)].clone()
    }

    fn bump(&mut self) -> Token {
        let t = self.current();
        if self.index < self.tokens.len() - 1 {
            self.index += 1;
        }
        t
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(&self.current().tok, Tok::Op(o) if *o == op)
    }

    fn expect(&mut self, op: &str) -> Result<Token, Error> {
        let t = self.current();
        if self.is_op(op) {
            self.bump();
            Ok(t)
        } else if t.tok == Tok::End {
            Err(Error::at(
                "S0203",
                format!("Expected \"{op}\" before end of expression"),
                t.position,
            ))
        } else {
            Err(Error::at(
                "S0202",
                format!("Expected \"{op}\", got {}", describe(&t.tok)),
                t.position,
            ))
        }
    }

    fn expression(&mut self, rbp: usize) -> Result<Node, Error> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return Err(Error::at(
                "S0100",
                format!("Expression is nested too deeply (more than {MAX_PARSE_DEPTH} levels)"),
                self.current().position,
            ));
        }
        let result = self.expression_inner(rbp);
        self.depth -= 1;
        result
    }

    fn expression_inner(&mut self, rbp: usize) -> Result<Node, Error> {
        let t = self.bump();
        let mut left = self.nud(t)?;
        while rbp < infix_power(&self.current().tok) {
            let t = self.bump();
            left = self.led(t, left)?;
        }
        Ok(left)
    }

    fn nud(&mut self, t: Token) -> Result<Node, Error> {
        let pos = t.position;
        Ok(match t.tok {
            Tok::Num(n) => Node::new(Kind::Num(n), pos),
            Tok::Str(s) => Node::new(Kind::Str(s.into()), pos),
            Tok::Value(v) => Node::new(Kind::Value(v), pos),
            Tok::Regex { pattern, flags } => {
                let mut prefix = String::new();
                for f in flags.chars() {
                    match f {
                        'i' => prefix.push_str("(?i)"),
                        'm' => prefix.push_str("(?m)"),
                        's' => prefix.push_str("(?s)"),
                        'g' => {}
                        other => {
                            return Err(Error::at(
                                "S0303",
                                format!("Unsupported regular expression flag: {other}"),
                                pos,
                            ));
                        }
                    }
                }
                let re = regex::Regex::new(&format!("{prefix}{pattern}")).map_err(|e| {
                    Error::at(
                        "S0303",
                        format!("Invalid regular expression /{pattern}/: {e}"),
                        pos,
                    )
                })?;
                Node::new(Kind::Regex(Arc::new(re)), pos)
            }
            Tok::Variable(v) => Node::new(Kind::Variable(v), pos),
            Tok::QuotedName(n) => path_of(Node::new(Kind::Name(n), pos)),
            Tok::Name(n) => {
                if (n == "function") && self.is_op("(") {
                    return self.lambda(pos);
                }
                path_of(Node::new(Kind::Name(n), pos))
            }
            Tok::Op(op) => match op {
                "-" => {
                    let operand = self.expression(70)?;
                    if let Kind::Num(n) = operand.kind
                        && operand.predicates.is_empty()
                    {
                        Node::new(Kind::Num(-n), pos)
                    } else {
                        Node::new(Kind::Neg(Box::new(operand)), pos)
                    }
                }
                "*" => Node::new(Kind::Wildcard, pos),
                "**" => Node::new(Kind::Descendant, pos),
                "?" => Node::new(Kind::Placeholder, pos),
                "%" => {
                    return Err(Error::at(
                        "S0217",
                        "The parent operator % is not supported by this evaluator",
                        pos,
                    ));
                }
                "(" => {
                    let mut exprs = Vec::new();
                    while !self.is_op(")") {
                        exprs.push(self.expression(0)?);
                        if !self.is_op(";") {
                            break;
                        }
                        self.bump();
                    }
                    self.expect(")")?;
                    let mut block = Node::new(Kind::Block(Vec::new()), pos);
                    block.cons_array = exprs.iter().any(|e| {
                        e.cons_array
                            || matches!(&e.kind, Kind::Path { steps, .. } if steps.first().is_some_and(|s| s.cons_array))
                    });
                    block.kind = Kind::Block(exprs);
                    block
                }
                "[" => {
                    let mut items = Vec::new();
                    if !self.is_op("]") {
                        loop {
                            let mut item = self.expression(0)?;
                            if self.is_op("..") {
                                let range_pos = self.bump().position;
                                let rhs = self.expression(0)?;
                                item = Node::new(
                                    Kind::Binary {
                                        op: "..",
                                        lhs: Box::new(item),
                                        rhs: Box::new(rhs),
                                    },
                                    range_pos,
                                );
                            }
                            items.push(item);
                            if !self.is_op(",") {
                                break;
                            }
                            self.bump();
                        }
                    }
                    self.expect("]")?;
                    Node::new(Kind::ArrayCons(items), pos)
                }
                "{" => {
                    let pairs = self.object_pairs()?;
                    Node::new(Kind::ObjectCons(Arc::new(pairs)), pos)
                }
                other => {
                    return Err(Error::at(
                        "S0211",
                        format!("The symbol \"{other}\" cannot be used as a unary operator"),
                        pos,
                    ));
                }
            },
            Tok::End => {
                return Err(Error::at("S0207", "Unexpected end of expression", pos));
            }
        })
    }

    fn object_pairs(&mut self) -> Result<Vec<(Node, Node)>, Error> {
        let mut pairs = Vec::new();
        if !self.is_op("}") {
            loop {
                let key = self.expression(0)?;
                self.expect(":")?;
                let value = self.expression(0)?;
                pairs.push((key, value));
                if !self.is_op(",") {
                    break;
                }
                self.bump();
            }
        }
        self.expect("}")?;
        Ok(pairs)
    }

    fn lambda(&mut self, pos: usize) -> Result<Node, Error> {
        self.expect("(")?;
        let mut params = Vec::new();
        if !self.is_op(")") {
            loop {
                let t = self.bump();
                match t.tok {
                    Tok::Variable(v) => params.push(v),
                    other => {
                        return Err(Error::at(
                            "S0208",
                            format!(
                                "Parameter {} of function definition must be a variable name (start with $)",
                                describe(&other)
                            ),
                            t.position,
                        ));
                    }
                }
                if !self.is_op(",") {
                    break;
                }
                self.bump();
            }
        }
        self.expect(")")?;
        let mut signature = None;
        if self.is_op("<") {
            // the signature is raw text up to the matching `>`
            let start = self.bump().position;
            let mut depth = 1;
            let mut text = String::from("<");
            loop {
                let t = self.bump();
                match &t.tok {
                    Tok::Op("<") => {
                        depth += 1;
                        text.push('<');
                    }
                    Tok::Op(">") => {
                        depth -= 1;
                        text.push('>');
                        if depth == 0 {
                            break;
                        }
                    }
                    Tok::Op(op) => text.push_str(op),
                    Tok::Name(n) => text.push_str(n),
                    Tok::End => {
                        return Err(Error::at(
                            "S0401",
                            "Function signature is not terminated",
                            start,
                        ));
                    }
                    other => text.push_str(&describe(other)),
                }
            }
            signature = Some(Signature::parse(&text).map_err(|m| Error::at("S0401", m, start))?);
        }
        self.expect("{")?;
        let body = self.expression(0)?;
        self.expect("}")?;
        Ok(Node::new(
            Kind::Lambda(Arc::new(LambdaDef {
                params,
                signature,
                body,
            })),
            pos,
        ))
    }

    fn led(&mut self, t: Token, left: Node) -> Result<Node, Error> {
        let pos = t.position;
        let op: &'static str = match &t.tok {
            Tok::Op(op) => op,
            Tok::Name(n) if n == "and" => "and",
            Tok::Name(n) if n == "or" => "or",
            Tok::Name(n) if n == "in" => "in",
            other => {
                return Err(Error::at(
                    "S0201",
                    format!("Syntax error: {}", describe(other)),
                    pos,
                ));
            }
        };
        let bp = infix_power(&t.tok);
        match op {
            "." => {
                let rhs = self.expression(bp)?;
                Ok(path_join(left, rhs)?)
            }
            "[" => {
                if self.is_op("]") {
                    self.bump();
                    let mut left = left;
                    match &mut left.kind {
                        Kind::Path {
                            steps,
                            keep_singleton_array,
                        } => {
                            if let Some(last) = steps.last_mut() {
                                last.keep_array = true;
                            }
                            *keep_singleton_array = true;
                        }
                        _ => left.keep_array = true,
                    }
                    return Ok(left);
                }
                let predicate = self.expression(0)?;
                self.expect("]")?;
                let mut left = left;
                match &mut left.kind {
                    Kind::Path { steps, .. } => {
                        if let Some(last) = steps.last_mut() {
                            if last.group.is_some() {
                                return Err(Error::at(
                                    "S0209",
                                    "A predicate cannot follow a grouping expression in a step",
                                    pos,
                                ));
                            }
                            last.stages.push(predicate);
                        }
                    }
                    _ => {
                        if left.group.is_some() {
                            return Err(Error::at(
                                "S0209",
                                "A predicate cannot follow a grouping expression in a step",
                                pos,
                            ));
                        }
                        left.predicates.push(predicate)
                    }
                }
                Ok(left)
            }
            "{" => {
                let pairs = self.object_pairs()?;
                let mut left = left;
                if left.group.is_some() {
                    return Err(Error::at(
                        "S0210",
                        "Each step can only have one grouping expression",
                        pos,
                    ));
                }
                left.group = Some(Arc::new(pairs));
                Ok(left)
            }
            "(" => {
                let mut args = Vec::new();
                let mut partial = false;
                if !self.is_op(")") {
                    loop {
                        if self.is_op("?") {
                            let p = self.bump().position;
                            args.push(Node::new(Kind::Placeholder, p));
                            partial = true;
                        } else {
                            args.push(self.expression(0)?);
                        }
                        if !self.is_op(",") {
                            break;
                        }
                        self.bump();
                    }
                }
                self.expect(")")?;
                Ok(Node::new(
                    Kind::Call {
                        procedure: Box::new(left),
                        args,
                        partial,
                    },
                    pos,
                ))
            }
            "?" => {
                let then = self.expression(0)?;
                let otherwise = if self.is_op(":") {
                    self.bump();
                    Some(Box::new(self.expression(0)?))
                } else {
                    None
                };
                Ok(Node::new(
                    Kind::Condition {
                        cond: Box::new(left),
                        then: Box::new(then),
                        otherwise,
                    },
                    pos,
                ))
            }
            ":=" => {
                let Kind::Variable(name) = &left.kind else {
                    return Err(Error::at(
                        "S0212",
                        "The left side of := must be a variable name (start with $)",
                        pos,
                    ));
                };
                let name = name.clone();
                let value = self.expression(bp - 1)?;
                Ok(Node::new(
                    Kind::Bind {
                        name,
                        value: Box::new(value),
                    },
                    pos,
                ))
            }
            "~>" => {
                let rhs = self.expression(bp)?;
                let keep = left.keep_array || rhs.keep_array;
                let mut node = Node::new(
                    Kind::Apply {
                        lhs: Box::new(left),
                        rhs: Box::new(rhs),
                    },
                    pos,
                );
                node.keep_array = keep;
                Ok(node)
            }
            "^" => {
                self.expect("(")?;
                let mut terms = Vec::new();
                loop {
                    let mut descending = false;
                    if self.is_op("<") {
                        self.bump();
                    } else if self.is_op(">") {
                        self.bump();
                        descending = true;
                    }
                    let expr = self.expression(0)?;
                    terms.push(SortTerm { descending, expr });
                    if !self.is_op(",") {
                        break;
                    }
                    self.bump();
                }
                self.expect(")")?;
                let mut path = if left.is_path() {
                    left
                } else {
                    let p = left.position;
                    let mut node = Node::new(
                        Kind::Path {
                            steps: vec![left],
                            keep_singleton_array: false,
                        },
                        p,
                    );
                    mark_cons_ends(&mut node);
                    node
                };
                if let Kind::Path { steps, .. } = &mut path.kind {
                    steps.push(Node::new(Kind::Sort(terms), pos));
                }
                Ok(path)
            }
            "@" | "#" => Err(Error::at(
                "S0217",
                format!("The {op} binding operator is not supported by this evaluator"),
                pos,
            )),
            "+" | "-" | "*" | "/" | "%" | "=" | "!=" | "<" | "<=" | ">" | ">=" | "&" | "and"
            | "or" | "in" | "??" | "?:" => {
                let rhs = self.expression(bp)?;
                Ok(Node::new(
                    Kind::Binary {
                        op,
                        lhs: Box::new(left),
                        rhs: Box::new(rhs),
                    },
                    pos,
                ))
            }
            other => Err(Error::at(
                "S0201",
                format!("Syntax error: \"{other}\""),
                pos,
            )),
        }
    }
}

fn path_of(step: Node) -> Node {
    let pos = step.position;
    let keep = step.keep_array;
    Node::new(
        Kind::Path {
            steps: vec![step],
            keep_singleton_array: keep,
        },
        pos,
    )
}

/// Marks array constructors that start or end a path so they are not flattened.
fn mark_cons_ends(path: &mut Node) {
    if let Kind::Path { steps, .. } = &mut path.kind {
        if let Some(first) = steps.first_mut()
            && matches!(first.kind, Kind::ArrayCons(_))
        {
            first.cons_array = true;
        }
        if let Some(last) = steps.last_mut()
            && matches!(last.kind, Kind::ArrayCons(_))
        {
            last.cons_array = true;
        }
    }
}

/// `lhs.rhs`: appends the right side's steps to the left side's path.
fn path_join(lhs: Node, rhs: Node) -> Result<Node, Error> {
    let mut result = if lhs.is_path() {
        lhs
    } else {
        let p = lhs.position;
        Node::new(
            Kind::Path {
                steps: vec![lhs],
                keep_singleton_array: false,
            },
            p,
        )
    };
    let Kind::Path {
        steps,
        keep_singleton_array,
    } = &mut result.kind
    else {
        unreachable!("result was made a path above")
    };
    match rhs.kind {
        Kind::Path {
            steps: rest,
            keep_singleton_array: keep,
        } => {
            steps.extend(rest);
            *keep_singleton_array |= keep;
        }
        _ => {
            let mut step = rhs;
            if !step.predicates.is_empty() {
                step.stages = std::mem::take(&mut step.predicates);
            }
            steps.push(step);
        }
    }
    for step in steps.iter_mut() {
        match &step.kind {
            Kind::Num(_) | Kind::Value(_) => {
                return Err(Error::at(
                    "S0213",
                    "The literal value cannot be used as a step within a path expression",
                    step.position,
                ));
            }
            Kind::Str(s) => step.kind = Kind::Name(s.to_string()),
            _ => {}
        }
    }
    if steps.iter().any(|s| s.keep_array) {
        *keep_singleton_array = true;
    }
    mark_cons_ends(&mut result);
    Ok(result)
}
