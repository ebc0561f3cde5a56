//! ACL command rules, judged for one module command as if it sat in given
//! ACL categories.
//!
//! Redis 7.0 puts module commands in no ACL category and has no call to give
//! them one, so `-@admin` never reaches them. On such a server the module reads
//! the calling user's command rules back (`ACL GETUSER`: the root rules and
//! each selector's) and judges them here the way Redis 7.2+ would for a
//! command in `@admin` and `@dangerous`.
//!
//! Redis 7.0 does not keep the rules as they were given: it keeps a bitmap of
//! allowed commands and writes it back as `+@all` or `-@all`, then categories,
//! then single commands. So a name granted after a category was removed
//! (`allcommands -@dangerous +whitelist.get`) reads back without the grant
//! (`+@all -@dangerous`) and is refused: the bitmap cannot tell it from
//! `+@all -@dangerous`, and refusing is the side that keeps the whitelist safe.

use std::fmt;

use crate::shown::Shown;

/// The ACL categories Redis 7.2+ gives every `WHITELIST.*` command.
pub const CATEGORIES: &[&str] = &["admin", "dangerous"];

/// One command rule of a user or selector, as `ACL GETUSER` writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `+@all` or `allcommands`: every command, present and future.
    AllowAll,
    /// `-@all` or `nocommands`: no command.
    DenyAll,
    /// `+@name` / `-@name`: every command of a category.
    Category {
        /// `+` or `-`.
        allow: bool,
        /// The category, without `@`.
        name: Box<[u8]>,
    },
    /// `+name` / `-name`: one command, a `container|subcommand`, or (with `+`
    /// and a command that has no subcommands) `command|first-arg`.
    Command {
        /// `+` or `-`.
        allow: bool,
        /// The command as written, `|` and all.
        name: Box<[u8]>,
    },
}

/// A token of a `commands` field that is not a command rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// The token as read.
    pub token: Shown,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an ACL command rule: '{}'", self.token)
    }
}

impl std::error::Error for RuleError {}

impl Rule {
    /// Reads one rule; names and categories keep their case (Redis compares
    /// them case-insensitively, and so does [`Rule::touches`]).
    pub fn parse(token: &[u8]) -> Result<Rule, RuleError> {
        let error = || RuleError { token: Shown::new(token) };
        if token.eq_ignore_ascii_case(b"allcommands") || token.eq_ignore_ascii_case(b"+@all") {
            return Ok(Rule::AllowAll);
        }
        if token.eq_ignore_ascii_case(b"nocommands") || token.eq_ignore_ascii_case(b"-@all") {
            return Ok(Rule::DenyAll);
        }
        let (allow, rest) = match token.split_first() {
            Some((b'+', rest)) => (true, rest),
            Some((b'-', rest)) => (false, rest),
            _ => return Err(error()),
        };
        match rest.split_first() {
            Some((b'@', name)) if !name.is_empty() => Ok(Rule::Category { allow, name: name.into() }),
            Some((b'@', _)) | None => Err(error()),
            Some(_) => Ok(Rule::Command { allow, name: rest.into() }),
        }
    }

    /// What this rule does to `command`: `None` if nothing.
    fn effect(&self, command: &Subject) -> Option<Effect<'_>> {
        match self {
            Rule::AllowAll => Some(Effect::Set(true)),
            Rule::DenyAll => Some(Effect::Set(false)),
            Rule::Category { allow, name } => command
                .categories
                .iter()
                .any(|c| name.eq_ignore_ascii_case(c.as_bytes()))
                .then_some(Effect::Set(*allow)),
            Rule::Command { allow, name } => {
                if name.eq_ignore_ascii_case(command.name.as_bytes()) {
                    return Some(Effect::Set(*allow));
                }
                // `+cmd|arg` on a command without subcommands allows that first
                // argument while the command itself is off. Redis refuses to
                // store `-cmd|arg` for such a command, and an empty argument.
                let (base, arg) = split_first_arg(name)?;
                (*allow
                    && base.eq_ignore_ascii_case(command.name.as_bytes())
                    && !arg.is_empty()
                    && !arg.contains(&b'|'))
                .then_some(Effect::FirstArg(arg))
            }
        }
    }

    /// Whether the rule changes whether `command` may run.
    pub fn touches(&self, command: &Subject) -> bool {
        self.effect(command).is_some()
    }
}

enum Effect<'a> {
    /// The command is now allowed (`true`) or not, whatever its arguments.
    Set(bool),
    /// While the command is not allowed, this first argument is.
    FirstArg(&'a [u8]),
}

fn split_first_arg(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = name.iter().position(|&b| b == b'|')?;
    Some((&name[..at], &name[at + 1..]))
}

/// A command as ACL rules see it: its name, the categories it is judged to
/// be in, and its first argument (for `+cmd|arg` rules).
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// The command's registered name, e.g. `whitelist.set`.
    pub name: &'a str,
    /// Its ACL categories, without `@`.
    pub categories: &'a [&'a str],
    /// The first argument after the command name, if any.
    pub first_arg: Option<&'a [u8]>,
}

/// Reads a `commands` field: rules separated by spaces.
pub fn parse_rules(text: &[u8]) -> Result<Vec<Rule>, RuleError> {
    text.split(u8::is_ascii_whitespace).filter(|t| !t.is_empty()).map(Rule::parse).collect()
}

/// Whether `rules`, applied in order to a selector that starts with no
/// command, let `command` run.
pub fn permits(rules: &[Rule], command: &Subject) -> bool {
    let mut allowed = false;
    let mut first_args: Vec<&[u8]> = Vec::new();
    for rule in rules {
        match rule.effect(command) {
            Some(Effect::Set(allow)) => {
                allowed = allow;
                first_args.clear();
            }
            Some(Effect::FirstArg(arg)) => first_args.push(arg),
            None => {}
        }
    }
    allowed || command.first_arg.is_some_and(|given| first_args.iter().any(|a| a.eq_ignore_ascii_case(given)))
}

/// The command rules of one ACL user: its root rules and each selector's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserRules {
    /// The rules outside parentheses.
    pub root: Vec<Rule>,
    /// The rules of each selector, in order.
    pub selectors: Vec<Vec<Rule>>,
}

impl UserRules {
    /// Reads the root `commands` field and each selector's.
    pub fn parse(root: &[u8], selectors: &[&[u8]]) -> Result<UserRules, RuleError> {
        Ok(UserRules {
            root: parse_rules(root)?,
            selectors: selectors.iter().map(|s| parse_rules(s)).collect::<Result<_, _>>()?,
        })
    }

    /// Whether the user may run `command`: its root rules or any selector
    /// allow it (Redis tries the root, then each selector).
    pub fn permits(&self, command: &Subject) -> bool {
        permits(&self.root, command) || self.selectors.iter().any(|s| permits(s, command))
    }
}

/// Redis 7.0's own reply for a command the user may not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoPerm<'a> {
    /// The command's registered name, e.g. `whitelist.set`.
    pub command: &'a str,
}

impl fmt::Display for NoPerm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NOPERM this user has no permissions to run the '{}' command", self.command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject<'a>(name: &'a str, first_arg: Option<&'a [u8]>) -> Subject<'a> {
        Subject { name, categories: CATEGORIES, first_arg }
    }

    fn allows(rules: &str, name: &str) -> bool {
        permits(&parse_rules(rules.as_bytes()).expect("rules"), &subject(name, None))
    }

    fn user(root: &str, selectors: &[&str]) -> UserRules {
        let selectors: Vec<&[u8]> = selectors.iter().map(|s| s.as_bytes()).collect();
        UserRules::parse(root.as_bytes(), &selectors).expect("rules")
    }

    #[test]
    fn parses_every_form_redis_writes() {
        let rules = parse_rules(b"+@all -@admin +whitelist.get -config|set +select|0 nocommands allcommands -@all")
            .expect("rules");
        assert_eq!(
            rules,
            vec![
                Rule::AllowAll,
                Rule::Category { allow: false, name: b"admin".as_slice().into() },
                Rule::Command { allow: true, name: b"whitelist.get".as_slice().into() },
                Rule::Command { allow: false, name: b"config|set".as_slice().into() },
                Rule::Command { allow: true, name: b"select|0".as_slice().into() },
                Rule::DenyAll,
                Rule::AllowAll,
                Rule::DenyAll,
            ]
        );
        assert_eq!(parse_rules(b"  +@ALL\t").expect("rules"), vec![Rule::AllowAll]);
        assert_eq!(parse_rules(b"").expect("rules"), vec![]);
    }

    #[test]
    fn refuses_what_is_not_a_command_rule() {
        for bad in ["~*", "on", "+", "-", "+@", "-@", "resetchannels", "(+get)", "%R~x"] {
            let error = parse_rules(format!("+@all {bad}").as_bytes()).expect_err(bad);
            assert_eq!(error.to_string(), format!("not an ACL command rule: '{bad}'"));
        }
    }

    #[test]
    fn the_hardening_recipes() {
        for name in ["whitelist.set", "whitelist.get"] {
            assert!(!allows("+@all -@admin", name));
            assert!(!allows("+@all -@dangerous", name));
            assert!(!allows("-@all +whitelist.set -@admin", name));
            assert!(allows("+@all", name));
            assert!(allows("allcommands -@read -@write -@keyspace", name));
            assert!(allows("+@all -config -flushall -keys", name));
            assert!(allows("-@all +@admin", name));
            assert!(!allows("", name));
            assert!(!allows("nocommands", name));
        }
        assert!(allows("allcommands -@dangerous +whitelist.get", "whitelist.get"));
        assert!(!allows("allcommands -@dangerous +whitelist.get", "whitelist.set"));
        assert!(allows("-@all +whitelist.get", "whitelist.get"));
        assert!(!allows("-@all +whitelist.get", "whitelist.set"));
        assert!(!allows("+@all -whitelist.set", "whitelist.set"));
        assert!(allows("+@all -whitelist.set", "whitelist.get"));
        assert!(allows("+@all -whitelist.set -@admin +@admin", "whitelist.set"));
    }

    #[test]
    fn names_and_categories_ignore_case() {
        assert!(allows("-@all +WHITELIST.Set", "whitelist.set"));
        assert!(!allows("+@all -@ADMIN", "whitelist.set"));
        assert!(!allows("ALLCOMMANDS -@Dangerous", "whitelist.set"));
    }

    #[test]
    fn other_commands_subcommands_and_categories_do_not_reach_it() {
        assert!(allows("+@all -@read -@write -config|set -whitelist.setx -whitelist -@slow", "whitelist.set"));
        assert!(!allows("-@all +@read +@write +config|set +whitelist.setx +whitelist.se", "whitelist.set"));
    }

    #[test]
    fn a_first_arg_rule_allows_that_first_argument_only() {
        let rules = parse_rules(b"-@all +whitelist.get|prod").expect("rules");
        let judge = |arg: Option<&[u8]>| permits(&rules, &subject("whitelist.get", arg));
        assert!(judge(Some(b"prod")));
        assert!(judge(Some(b"PROD")));
        assert!(!judge(Some(b"dev")));
        assert!(!judge(None));
        // A later rule on the command resets its first arguments.
        let reset = parse_rules(b"-@all +whitelist.get|prod -@admin").expect("rules");
        assert!(!permits(&reset, &subject("whitelist.get", Some(b"prod"))));
        let reset = parse_rules(b"-@all +whitelist.get|prod +@all -whitelist.get").expect("rules");
        assert!(!permits(&reset, &subject("whitelist.get", Some(b"prod"))));
        // Forms Redis never stores for a command without subcommands.
        for rules in ["-@all -whitelist.get|prod", "-@all +whitelist.get|", "-@all +whitelist.get|prod|x"] {
            let rules = parse_rules(rules.as_bytes()).expect("rules");
            assert!(!permits(&rules, &subject("whitelist.get", Some(b"prod"))));
        }
    }

    #[test]
    fn a_selector_can_grant_what_the_root_refuses() {
        let u = user("+@all -@dangerous", &["-@all +whitelist.get"]);
        assert!(u.permits(&subject("whitelist.get", None)));
        assert!(!u.permits(&subject("whitelist.set", None)));
        let u = user("-@all +whitelist.get", &["-@all +whitelist.set", "-@all"]);
        assert!(u.permits(&subject("whitelist.set", None)));
        assert!(u.permits(&subject("whitelist.get", None)));
        assert!(!u.permits(&subject("whitelist.del", None)));
        assert!(!user("+@all -@admin", &["+@all -@dangerous"]).permits(&subject("whitelist.set", None)));
    }

    #[test]
    fn a_bad_selector_makes_the_user_unreadable() {
        assert!(UserRules::parse(b"+@all", &[b"-@all ~*".as_slice()]).is_err());
        assert!(UserRules::parse(b"+@all ~*", &[]).is_err());
    }

    #[test]
    fn noperm_is_redis_70s_text() {
        assert_eq!(
            NoPerm { command: "whitelist.set" }.to_string(),
            "NOPERM this user has no permissions to run the 'whitelist.set' command"
        );
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        const POOL: &[&str] = &[
            "+@all",
            "-@all",
            "allcommands",
            "nocommands",
            "+@admin",
            "-@admin",
            "+@dangerous",
            "-@DANGEROUS",
            "+@read",
            "-@write",
            "+whitelist.set",
            "-whitelist.set",
            "+WHITELIST.GET",
            "-whitelist.get",
            "+whitelist.set|prod",
            "+whitelist.get|prod",
            "-config|set",
            "+get",
        ];

        const NAMES: &[&str] = &["whitelist.set", "whitelist.get"];
        const FIRST_ARGS: &[Option<&[u8]>] = &[None, Some(b"prod"), Some(b"dev")];
        const REMOVALS: &[&str] = &["-@admin", "-@dangerous", "-@all", "nocommands"];
        const GRANTS: &[&str] = &["+@admin", "+@dangerous", "+@all", "allcommands"];
        const NOISE: &[&str] = &["+@read", "-@write", "-config|set", "+get", "-whitelist.setx", "+@slow"];

        fn rules() -> impl Strategy<Value = Vec<&'static str>> {
            proptest::collection::vec(proptest::sample::select(POOL), 0..12)
        }

        fn name() -> impl Strategy<Value = &'static str> {
            proptest::sample::select(NAMES)
        }

        fn first_arg() -> impl Strategy<Value = Option<&'static [u8]>> {
            proptest::sample::select(FIRST_ARGS)
        }

        /// The model: the last rule that sets the command decides; after it,
        /// a matching `+cmd|arg` admits that first argument.
        fn model(tokens: &[&str], name: &str, first_arg: Option<&[u8]>) -> bool {
            let resets = |t: &str| {
                let t = t.to_ascii_lowercase();
                ["+@all", "-@all", "allcommands", "nocommands", "+@admin", "-@admin", "+@dangerous", "-@dangerous"]
                    .contains(&t.as_str())
                    || t[1..] == *name
            };
            let last = tokens.iter().rposition(|t| resets(t));
            let allowed = last.is_some_and(|i| {
                let t = tokens[i].to_ascii_lowercase();
                t.starts_with('+') || t == "allcommands"
            });
            let after = &tokens[last.map_or(0, |i| i + 1)..];
            allowed
                || first_arg.is_some_and(|arg| {
                    after.iter().any(|t| t.as_bytes() == [b"+", name.as_bytes(), b"|", arg].concat().as_slice())
                })
        }

        proptest! {
            #[test]
            fn matches_the_model(tokens in rules(), name in name(), arg in first_arg()) {
                let rules = parse_rules(tokens.join(" ").as_bytes()).expect("pool rules parse");
                let subject = Subject { name, categories: CATEGORIES, first_arg: arg };
                prop_assert_eq!(permits(&rules, &subject), model(&tokens, name, arg), "{:?}", tokens);
            }

            #[test]
            fn a_trailing_category_removal_always_refuses(tokens in rules(), name in name(), arg in first_arg(),
                    last in proptest::sample::select(REMOVALS)) {
                let text = format!("{} {last}", tokens.join(" "));
                let rules = parse_rules(text.as_bytes()).expect("pool rules parse");
                let subject = Subject { name, categories: CATEGORIES, first_arg: arg };
                prop_assert!(!permits(&rules, &subject), "{}", text);
            }

            #[test]
            fn a_trailing_grant_always_allows(tokens in rules(), name in name(), arg in first_arg(),
                    last in proptest::sample::select(GRANTS)) {
                let text = format!("{} {last}", tokens.join(" "));
                let rules = parse_rules(text.as_bytes()).expect("pool rules parse");
                let subject = Subject { name, categories: CATEGORIES, first_arg: arg };
                prop_assert!(permits(&rules, &subject), "{}", text);
            }

            #[test]
            fn rules_for_other_commands_change_nothing(tokens in rules(), name in name(), arg in first_arg(),
                    noise in proptest::collection::vec(proptest::sample::select(NOISE), 0..6),
                    at in any::<proptest::sample::Index>()) {
                let subject = Subject { name, categories: CATEGORIES, first_arg: arg };
                let rules = parse_rules(tokens.join(" ").as_bytes()).expect("pool rules parse");
                let mut noisy = tokens.clone();
                let at = at.index(noisy.len() + 1);
                for n in noise {
                    noisy.insert(at, n);
                }
                let noisy = parse_rules(noisy.join(" ").as_bytes()).expect("pool rules parse");
                prop_assert_eq!(permits(&rules, &subject), permits(&noisy, &subject));
            }

            #[test]
            fn a_selector_only_adds(root in rules(), selectors in proptest::collection::vec(rules(), 0..3),
                    name in name(), arg in first_arg()) {
                let subject = Subject { name, categories: CATEGORIES, first_arg: arg };
                let texts: Vec<String> = selectors.iter().map(|s| s.join(" ")).collect();
                let raw: Vec<&[u8]> = texts.iter().map(|s| s.as_bytes()).collect();
                let user = UserRules::parse(root.join(" ").as_bytes(), &raw).expect("pool rules parse");
                let any = permits(&user.root, &subject) || user.selectors.iter().any(|s| permits(s, &subject));
                prop_assert_eq!(user.permits(&subject), any);
                prop_assert!(!permits(&user.root, &subject) || user.permits(&subject));
            }
        }
    }
}
