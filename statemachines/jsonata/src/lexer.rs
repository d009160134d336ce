//! Tokenizer for JSONata source text.

use crate::error::Error;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An operator or punctuation symbol, e.g. `.`, `:=`, `~>`.
    Op(&'static str),
    /// A field name, including the keywords `and`, `or`, `in` and `function`.
    Name(String),
    /// A name written in backticks: never a keyword.
    QuotedName(String),
    Variable(String),
    Str(String),
    Num(f64),
    /// `true`, `false` or `null`.
    Value(Literal),
    Regex {
        pattern: String,
        flags: String,
    },
    End,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Literal {
    True,
    False,
    Null,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Character offset just after the token, as JSONata reports positions.
    pub position: usize,
}

const OPERATORS: &[&str] = &[
    "..", ":=", "!=", "<=", ">=", "~>", "**", "??", "?:", ".", "[", "]", "{", "}", "(", ")", ",",
    "@", "#", ";", ":", "?", "+", "-", "*", "/", "%", "|", "=", "<", ">", "^", "&", "!", "~",
];

pub(crate) struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    _src: &'a str,
    /// Whether the previous token ended an operand (so a `/` now divides).
    after_operand: bool,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Lexer {
            chars: src.chars().collect(),
            pos: 0,
            _src: src,
            after_operand: false,
        }
    }

    fn peek(&self, off: usize) -> Option<char> {
        self.chars.get(self.pos + off).copied()
    }

    fn skip_ws_and_comments(&mut self) -> Result<(), Error> {
        loop {
            match self.peek(0) {
                Some(c) if c.is_whitespace() => self.pos += 1,
                Some('/') if self.peek(1) == Some('*') => {
                    let start = self.pos;
                    self.pos += 2;
                    loop {
                        match self.peek(0) {
                            None => {
                                return Err(Error::at(
                                    "S0106",
                                    "Comment has no closing tag",
                                    start,
                                ));
                            }
                            Some('*') if self.peek(1) == Some('/') => {
                                self.pos += 2;
                                break;
                            }
                            Some(_) => self.pos += 1,
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Splits the whole source into tokens, ending with [`Tok::End`].
    pub(crate) fn tokenize(mut self) -> Result<Vec<Token>, Error> {
        let mut out = Vec::new();
        loop {
            let token = self.next_token()?;
            self.after_operand = match &token.tok {
                Tok::Op(op) => matches!(*op, ")" | "]" | "}"),
                _ => true,
            };
            let end = token.tok == Tok::End;
            out.push(token);
            if end {
                return Ok(out);
            }
        }
    }

    /// Reads the next token. Where an operand is expected a `/` starts a regular expression
    /// rather than a division.
    fn next_token(&mut self) -> Result<Token, Error> {
        let prefix = !self.after_operand;
        self.skip_ws_and_comments()?;
        let Some(c) = self.peek(0) else {
            return Ok(Token {
                tok: Tok::End,
                position: self.pos,
            });
        };
        if c == '/' && prefix {
            return self.regex();
        }
        if c == '"' || c == '\'' {
            return self.string(c);
        }
        if c.is_ascii_digit() {
            return self.number();
        }
        if c == '`' {
            let start = self.pos;
            self.pos += 1;
            let mut name = String::new();
            loop {
                match self.peek(0) {
                    None => {
                        return Err(Error::at(
                            "S0105",
                            "Quoted property name must be terminated with a backquote (`)",
                            start,
                        ));
                    }
                    Some('`') => {
                        self.pos += 1;
                        break;
                    }
                    Some(ch) => {
                        name.push(ch);
                        self.pos += 1;
                    }
                }
            }
            return Ok(Token {
                tok: Tok::QuotedName(name),
                position: self.pos,
            });
        }
        for op in OPERATORS {
            let matches = op
                .chars()
                .enumerate()
                .all(|(i, oc)| self.peek(i) == Some(oc));
            if matches {
                // `..` followed by a digit is still the range operator; `?:`/`??` are only
                // operators when not part of a conditional written without spaces around a
                // negative literal, which JSONata does not distinguish either.
                self.pos += op.chars().count();
                return Ok(Token {
                    tok: Tok::Op(op),
                    position: self.pos,
                });
            }
        }
        if c == '$' {
            self.pos += 1;
            if self.peek(0) == Some('$') {
                self.pos += 1;
                return Ok(Token {
                    tok: Tok::Variable("$".into()),
                    position: self.pos,
                });
            }
            let name = self.read_name_chars();
            return Ok(Token {
                tok: Tok::Variable(name),
                position: self.pos,
            });
        }
        if c == 'λ' {
            self.pos += 1;
            return Ok(Token {
                tok: Tok::Name("function".into()),
                position: self.pos,
            });
        }
        let name = self.read_name_chars();
        if name.is_empty() {
            return Err(Error::at(
                "S0204",
                format!("Unknown operator: \"{c}\""),
                self.pos + 1,
            ));
        }
        let tok = match name.as_str() {
            "true" => Tok::Value(Literal::True),
            "false" => Tok::Value(Literal::False),
            "null" => Tok::Value(Literal::Null),
            _ => Tok::Name(name),
        };
        Ok(Token {
            tok,
            position: self.pos,
        })
    }

    fn read_name_chars(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek(0) {
            if ch.is_whitespace() || "`.[]{}()|,@#;:?+-*/%=<>^&!~\"'$".contains(ch) {
                break;
            }
            name.push(ch);
            self.pos += 1;
        }
        name
    }

    fn number(&mut self) -> Result<Token, Error> {
        let start = self.pos;
        let mut text = String::new();
        while let Some(ch) = self.peek(0) {
            if ch.is_ascii_digit() {
                text.push(ch);
                self.pos += 1;
            } else {
                break;
            }
        }
        // a fraction needs a digit after the dot, so `1..5` stays a range
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|d| d.is_ascii_digit()) {
            text.push('.');
            self.pos += 1;
            while let Some(ch) = self.peek(0) {
                if ch.is_ascii_digit() {
                    text.push(ch);
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        if matches!(self.peek(0), Some('e') | Some('E')) {
            let (sign, digit_at) = match self.peek(1) {
                Some('+') | Some('-') => (self.peek(1), 2),
                _ => (None, 1),
            };
            if self.peek(digit_at).is_some_and(|d| d.is_ascii_digit()) {
                text.push('e');
                if let Some(s) = sign {
                    text.push(s);
                }
                self.pos += digit_at;
                while let Some(ch) = self.peek(0) {
                    if ch.is_ascii_digit() {
                        text.push(ch);
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
            }
        }
        let value: f64 = text
            .parse()
            .map_err(|_| Error::at("S0102", format!("Number out of range: {text}"), start))?;
        if !value.is_finite() {
            return Err(Error::at(
                "S0102",
                format!("Number out of range: {text}"),
                self.pos,
            ));
        }
        Ok(Token {
            tok: Tok::Num(value),
            position: self.pos,
        })
    }

    fn string(&mut self, quote: char) -> Result<Token, Error> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(ch) = self.peek(0) else {
                return Err(Error::at(
                    "S0101",
                    "String literal must be terminated by a matching quote",
                    start,
                ));
            };
            self.pos += 1;
            if ch == quote {
                break;
            }
            if ch != '\\' {
                out.push(ch);
                continue;
            }
            let Some(esc) = self.peek(0) else {
                return Err(Error::at(
                    "S0101",
                    "String literal must be terminated by a matching quote",
                    start,
                ));
            };
            self.pos += 1;
            match esc {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '\'' => out.push('\''),
                'u' => {
                    let unit = self.hex4().ok_or_else(|| {
                        Error::at(
                            "S0104",
                            "The escape sequence \\u must be followed by 4 hex digits",
                            self.pos,
                        )
                    })?;
                    if (0xD800..0xDC00).contains(&unit)
                        && self.peek(0) == Some('\\')
                        && self.peek(1) == Some('u')
                    {
                        let save = self.pos;
                        self.pos += 2;
                        match self.hex4() {
                            Some(low) if (0xDC00..0xE000).contains(&low) => {
                                let cp = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                                out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                            }
                            _ => {
                                self.pos = save;
                                out.push('\u{FFFD}');
                            }
                        }
                    } else {
                        out.push(char::from_u32(unit).unwrap_or('\u{FFFD}'));
                    }
                }
                other => {
                    return Err(Error::at(
                        "S0103",
                        format!("Unsupported escape sequence: \\{other}"),
                        self.pos,
                    ));
                }
            }
        }
        Ok(Token {
            tok: Tok::Str(out),
            position: self.pos,
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for i in 0..4 {
            v = v * 16 + self.peek(i)?.to_digit(16)?;
        }
        self.pos += 4;
        Some(v)
    }

    fn regex(&mut self) -> Result<Token, Error> {
        let start = self.pos;
        self.pos += 1;
        let mut pattern = String::new();
        let mut depth_class = false;
        loop {
            let Some(ch) = self.peek(0) else {
                return Err(Error::at(
                    "S0302",
                    "No terminating / in regular expression",
                    start,
                ));
            };
            self.pos += 1;
            if ch == '\\' {
                pattern.push(ch);
                if let Some(next) = self.peek(0) {
                    pattern.push(next);
                    self.pos += 1;
                }
                continue;
            }
            if ch == '[' {
                depth_class = true;
            } else if ch == ']' {
                depth_class = false;
            } else if ch == '/' && !depth_class {
                break;
            }
            pattern.push(ch);
        }
        if pattern.is_empty() {
            return Err(Error::at(
                "S0301",
                "Empty regular expressions are not allowed",
                self.pos,
            ));
        }
        let mut flags = String::new();
        while let Some(ch) = self.peek(0) {
            if ch.is_ascii_alphabetic() {
                flags.push(ch);
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(Token {
            tok: Tok::Regex { pattern, flags },
            position: self.pos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        Lexer::new(src)
            .tokenize()
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn slash_is_division_after_an_operand_and_a_regex_elsewhere() {
        assert_eq!(
            toks("a / 2"),
            vec![Tok::Name("a".into()), Tok::Op("/"), Tok::Num(2.0), Tok::End]
        );
        assert_eq!(
            toks("$f(/x+/i)"),
            vec![
                Tok::Variable("f".into()),
                Tok::Op("("),
                Tok::Regex {
                    pattern: "x+".into(),
                    flags: "i".into()
                },
                Tok::Op(")"),
                Tok::End
            ]
        );
    }

    #[test]
    fn numbers_ranges_and_variables() {
        assert_eq!(
            toks("1..5"),
            vec![Tok::Num(1.0), Tok::Op(".."), Tok::Num(5.0), Tok::End]
        );
        assert_eq!(toks("1.5e3"), vec![Tok::Num(1500.0), Tok::End]);
        assert_eq!(
            toks("$$ $"),
            vec![
                Tok::Variable("$".into()),
                Tok::Variable(String::new()),
                Tok::End
            ]
        );
        assert_eq!(
            toks("`a b`.c"),
            vec![
                Tok::QuotedName("a b".into()),
                Tok::Op("."),
                Tok::Name("c".into()),
                Tok::End
            ]
        );
    }

    #[test]
    fn positions_point_just_after_the_token() {
        let tokens = Lexer::new("ab + 'cd'").tokenize().unwrap();
        let positions: Vec<usize> = tokens.iter().map(|t| t.position).collect();
        assert_eq!(positions, vec![2, 4, 9, 9]);
    }

    #[test]
    fn bad_tokens_are_errors() {
        assert_eq!(Lexer::new("1e999").tokenize().unwrap_err().code, "S0102");
        assert_eq!(Lexer::new("'\\u12'").tokenize().unwrap_err().code, "S0104");
        assert_eq!(Lexer::new("//").tokenize().unwrap_err().code, "S0301");
        assert_eq!(Lexer::new("/abc").tokenize().unwrap_err().code, "S0302");
    }
}
