//! The Redis token store's script replies, where a shared store's entry enters the client:
//! arbitrary reply trees (`Nil`, integers, bulk and simple strings, nested arrays), the
//! well-formed shapes most of the time so the fuzzer gets deep, with arbitrary tokens and
//! numbers (a 10 MB token in the store used to panic every run of the fleet).
//!
//! Checked: no panic; a parsed grant holds a token of 1 to 512 bytes that lives at most a
//! day; an error never quotes the token text.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use wecom_material_core::shared_token::CommitReply;
use wecom_material_core::shared_token::LookupReply;
use wecom_material_core::shared_token::StoredGrant;
use wecom_material_redis::fuzzing::{Value, parse_commit, parse_flag, parse_lookup};

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
});

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let (reply, token) = reply(u)?;
    let which = u.int_in_range(0..=2u8)?;
    let check = |grant: &StoredGrant| {
        assert!((1..=512).contains(&grant.token.expose().len()));
        assert!(grant.expires_in <= Duration::from_secs(86_400));
    };
    match which {
        0 => match parse_lookup(reply) {
            Ok(LookupReply::Ready(grant)) => check(&grant),
            Ok(LookupReply::Refresh { current, .. }) => current.iter().for_each(check),
            Ok(LookupReply::Wait { .. }) => {}
            Err(e) => assert_quiet(&e.to_string(), token.as_deref()),
        },
        1 => match parse_commit(reply) {
            Ok(CommitReply::Superseded { current }) => current.iter().for_each(check),
            Ok(CommitReply::Stored { .. }) => {}
            Err(e) => assert_quiet(&e.to_string(), token.as_deref()),
        },
        _ => {
            let _ = parse_flag(reply);
        }
    }
    Ok(())
}

/// An error's text never holds a token longer than a few characters (short ones may match
/// words of the message by chance).
fn assert_quiet(message: &str, token: Option<&str>) {
    if let Some(token) = token.filter(|t| t.len() >= 12) {
        assert!(!message.contains(token), "{message}");
    }
}

/// A reply: usually a script's shape (`ready` / `refresh` / `wait` / `stored` /
/// `superseded` with their fields), else an arbitrary tree. Returns the token text used.
fn reply(u: &mut Unstructured<'_>) -> Result<(Value, Option<String>)> {
    if u.ratio(1, 5)? {
        return Ok((tree(u, 3)?, None));
    }
    let token = token(u)?;
    let grant = |u: &mut Unstructured<'_>, token: &str| -> Result<Vec<Value>> {
        Ok(vec![
            Value::BulkString(token.as_bytes().to_vec()),
            number(u)?,
            number(u)?,
        ])
    };
    let tag = |s: &str| Value::BulkString(s.as_bytes().to_vec());
    let mut items = match u.int_in_range(0..=4u8)? {
        0 => vec![tag("ready")],
        1 => vec![tag("refresh"), number(u)?, number(u)?],
        2 => vec![tag("wait"), number(u)?, number(u)?],
        3 => vec![tag("stored"), number(u)?],
        _ => vec![tag("superseded")],
    };
    if u.arbitrary()? {
        items.extend(grant(u, &token)?);
    }
    Ok((Value::Array(items), Some(token)))
}

/// A token: empty, short, around the 512-byte limit, or long (up to 64 KiB: the 10 MB of the
/// issue is a unit test of the parser; here it would cost 30 ms an execution).
fn token(u: &mut Unstructured<'_>) -> Result<String> {
    let len = match u.int_in_range(0..=4u8)? {
        0 => 0,
        1 => u.int_in_range(1..=64)?,
        2 => u.int_in_range(500..=530)?,
        3 => u.int_in_range(1..=4096)?,
        _ => u.int_in_range(513..=65_536)?,
    };
    let fill = char::from(u.int_in_range(b'!'..=b'~')?);
    Ok(std::iter::repeat_n(fill, len).collect())
}

/// An integer reply: small, near the limits of i64, or negative.
fn number(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(Value::Int(match u.int_in_range(0..=3u8)? {
        0 => u.int_in_range(0..=100_000)?,
        1 => i64::MAX - u.int_in_range(0..=1000)?,
        2 => -u.int_in_range(0..=1000)?,
        _ => u.arbitrary()?,
    }))
}

/// An arbitrary reply tree at most `depth` deep.
fn tree(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    Ok(match u.int_in_range(0..=4u8)? {
        0 => Value::Nil,
        1 => number(u)?,
        2 => Value::BulkString(u.arbitrary::<&[u8]>()?.to_vec()),
        3 => Value::SimpleString(u.arbitrary::<&str>()?.to_owned()),
        _ if depth == 0 => Value::Nil,
        _ => {
            let n = u.int_in_range(0..=5usize)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(tree(u, depth - 1)?);
            }
            Value::Array(items)
        }
    })
}
