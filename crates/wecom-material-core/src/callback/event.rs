//! The XML envelope of a delivery and the events inside it.

use crate::media_type::JobId;

use super::error::CallbackError;
use super::xml::{field, push_cdata_element, root_children};

/// The `Event` value of the async-upload job-finished event.
pub const UPLOAD_MEDIA_JOB_FINISH: &str = "upload_media_job_finish";

/// A decrypted callback event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackEvent {
    /// An async `upload_by_url` job ended; fetch its result with `get_upload_by_url_result`.
    UploadMediaJobFinish {
        /// The job that ended.
        job_id: JobId,
        /// `CreateTime`: when WeCom created the event, in Unix seconds.
        create_time: u64,
        /// `ToUserName`: the corp id the event is addressed to.
        corp_id: String,
    },
    /// Any other message or event, kept as its XML.
    Other {
        /// `MsgType` (empty if absent).
        msg_type: String,
        /// `Event`, if present.
        event: Option<String>,
        /// The whole decrypted XML.
        raw_xml: String,
    },
}

impl CallbackEvent {
    /// The job id, if this is a job-finished event.
    pub fn job_id(&self) -> Option<&JobId> {
        match self {
            CallbackEvent::UploadMediaJobFinish { job_id, .. } => Some(job_id),
            CallbackEvent::Other { .. } => None,
        }
    }
}

/// Parses a decrypted callback message.
///
/// `MsgType` `event` with `Event` `upload_media_job_finish` becomes
/// [`CallbackEvent::UploadMediaJobFinish`] (it must then carry a non-empty `JobId` without
/// control or Unicode format characters, and a numeric `CreateTime`); every other well-formed message becomes [`CallbackEvent::Other`].
/// Values may be CDATA or plain text; unknown elements are ignored.
pub fn parse_event(xml: &[u8]) -> Result<CallbackEvent, CallbackError> {
    let xml = std::str::from_utf8(xml)
        .map_err(|_| CallbackError::MalformedXml("event is not UTF-8".into()))?;
    let children = root_children(xml)?;
    let msg_type = field(&children, "MsgType").unwrap_or("").trim();
    let event = field(&children, "Event").map(str::trim);
    if msg_type == "event" && event == Some(UPLOAD_MEDIA_JOB_FINISH) {
        let job_id = field(&children, "JobId")
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                CallbackError::MalformedXml("job-finished event without JobId".into())
            })?;
        // Refused rather than escaped: a job id is matched against the one upload-by-url
        // returned, and WeCom's are letters, digits and `_`; one with ESC or U+202E is forged.
        if job_id.chars().any(crate::printable::is_control_or_format) {
            return Err(CallbackError::MalformedXml(
                "JobId holds control or format characters".into(),
            ));
        }
        let create_time = field(&children, "CreateTime")
            .and_then(|t| t.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                CallbackError::MalformedXml(
                    "job-finished event without a numeric CreateTime".into(),
                )
            })?;
        let corp_id = field(&children, "ToUserName").unwrap_or("").trim();
        return Ok(CallbackEvent::UploadMediaJobFinish {
            job_id: JobId::new(job_id),
            create_time,
            corp_id: corp_id.to_owned(),
        });
    }
    Ok(CallbackEvent::Other {
        msg_type: msg_type.to_owned(),
        event: event.map(str::to_owned),
        raw_xml: xml.to_owned(),
    })
}

/// The decrypted XML of an `upload_media_job_finish` event, as WeCom sends it.
pub fn event_xml_upload_media_job_finish(
    corp_id: &str,
    create_time: u64,
    job_id: &JobId,
) -> String {
    let mut xml = String::with_capacity(256);
    xml.push_str("<xml>");
    push_cdata_element(&mut xml, "ToUserName", corp_id);
    push_cdata_element(&mut xml, "FromUserName", "sys");
    xml.push_str(&format!("<CreateTime>{create_time}</CreateTime>"));
    push_cdata_element(&mut xml, "MsgType", "event");
    push_cdata_element(&mut xml, "Event", UPLOAD_MEDIA_JOB_FINISH);
    push_cdata_element(&mut xml, "JobId", job_id.as_str());
    xml.push_str("</xml>");
    xml
}

/// The outer XML of a delivery: who it is for and the encrypted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `ToUserName`, if present (the corp id).
    pub to_user_name: Option<String>,
    /// `AgentID`, if present.
    pub agent_id: Option<String>,
    /// `Encrypt`: the base64 ciphertext.
    pub encrypt: String,
}

/// Parses a delivery's body `<xml><ToUserName>…</ToUserName><AgentID>…</AgentID>
/// <Encrypt>…</Encrypt></xml>`.
///
/// Fails with [`CallbackError::MissingParameter`]`("Encrypt")` if there is no `Encrypt`.
pub fn parse_envelope(body: &[u8]) -> Result<Envelope, CallbackError> {
    let body = std::str::from_utf8(body)
        .map_err(|_| CallbackError::MalformedXml("envelope is not UTF-8".into()))?;
    let children = root_children(body)?;
    let encrypt = field(&children, "Encrypt").ok_or(CallbackError::MissingParameter("Encrypt"))?;
    Ok(Envelope {
        to_user_name: field(&children, "ToUserName").map(|s| s.trim().to_owned()),
        agent_id: field(&children, "AgentID").map(|s| s.trim().to_owned()),
        encrypt: encrypt.trim().to_owned(),
    })
}

/// Builds a delivery's body around `encrypted`; `AgentID` is left out when `agent_id` is
/// `None`.
pub fn envelope_xml(to_user_name: &str, agent_id: Option<&str>, encrypted: &str) -> String {
    let mut xml = String::with_capacity(encrypted.len() + 128);
    xml.push_str("<xml>");
    push_cdata_element(&mut xml, "ToUserName", to_user_name);
    if let Some(agent_id) = agent_id {
        push_cdata_element(&mut xml, "AgentID", agent_id);
    }
    push_cdata_element(&mut xml, "Encrypt", encrypted);
    xml.push_str("</xml>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SPEC_EVENT: &str = "<xml><ToUserName><![CDATA[wx28dbb14e3720FAKE]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\n<CreateTime>1425284517</CreateTime><MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA[upload_media_job_finish]]></Event>\n<JobId><![CDATA[jobid_S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4]]></JobId></xml>";

    fn spec_event() -> CallbackEvent {
        CallbackEvent::UploadMediaJobFinish {
            job_id: JobId::new("jobid_S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4"),
            create_time: 1425284517,
            corp_id: "wx28dbb14e3720FAKE".into(),
        }
    }

    #[test]
    fn parses_the_spec_event_with_cdata() {
        assert_eq!(parse_event(SPEC_EVENT.as_bytes()).unwrap(), spec_event());
    }

    #[test]
    fn parses_plain_text_unknown_elements_and_declarations() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- delivered -->\n<xml>\n  \
            <Unknown attr=\"1\"><Nested>deep</Nested>x</Unknown>\n  <Empty/>\n  \
            <ToUserName>wx28dbb14e3720FAKE</ToUserName>\n  <CreateTime> 1425284517 </CreateTime>\n  \
            <MsgType>event</MsgType>\n  <Event>upload_media_job_finish</Event>\n  \
            <JobId>jobid_S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4</JobId>\n</xml>\n";
        assert_eq!(parse_event(xml.as_bytes()).unwrap(), spec_event());
    }

    #[test]
    fn entities_and_mixed_sections_are_joined() {
        let xml = "<xml><MsgType>event</MsgType><Event>upload_media_job_finish</Event>\
            <CreateTime>1</CreateTime><ToUserName>a&amp;b&#x43;</ToUserName>\
            <JobId>job<![CDATA[_]]>1</JobId></xml>";
        assert_eq!(
            parse_event(xml.as_bytes()).unwrap(),
            CallbackEvent::UploadMediaJobFinish {
                job_id: JobId::new("job_1"),
                create_time: 1,
                corp_id: "a&bC".into()
            }
        );
    }

    #[test]
    fn other_events_are_kept_raw() {
        let text = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content></xml>";
        assert_eq!(
            parse_event(text.as_bytes()).unwrap(),
            CallbackEvent::Other {
                msg_type: "text".into(),
                event: None,
                raw_xml: text.into()
            }
        );
        let click = "<xml><MsgType>event</MsgType><Event>click</Event><EventKey>k</EventKey></xml>";
        assert_eq!(
            parse_event(click.as_bytes()).unwrap(),
            CallbackEvent::Other {
                msg_type: "event".into(),
                event: Some("click".into()),
                raw_xml: click.into()
            }
        );
        // No MsgType at all is still kept.
        assert!(matches!(
            parse_event(b"<xml/>").unwrap(),
            CallbackEvent::Other { msg_type, event: None, .. } if msg_type.is_empty()
        ));
    }

    #[test]
    fn malformed_xml_is_an_error() {
        for bad in [
            "",
            "   ",
            "not xml",
            "<xml><MsgType>event</xml>",
            "<xml><MsgType>event</MsgType>",
            "<xml></xml><xml></xml>",
            "<xml>&unknown;</xml>",
            "<xml><A>&bogus;</A></xml>",
            "<xml><A>a & b</A></xml>",
            "<xml><A><![CDATA[open</A></xml>",
        ] {
            assert!(
                matches!(
                    parse_event(bad.as_bytes()),
                    Err(CallbackError::MalformedXml(_))
                ),
                "{bad:?} -> {:?}",
                parse_event(bad.as_bytes())
            );
        }
        assert!(matches!(
            parse_event(b"<xml>\xff</xml>"),
            Err(CallbackError::MalformedXml(_))
        ));
    }

    /// A job id with ESC or U+202E used to pass through to the terminal and the waits.
    #[test]
    fn a_job_id_with_control_or_format_characters_is_refused() {
        for job in ["job\u{1b}[31m", "job\u{202e}1", "job\u{200b}", "j\u{7f}"] {
            let xml = format!(
                "<xml><MsgType>event</MsgType><Event>upload_media_job_finish</Event>\
                 <CreateTime>1</CreateTime><JobId><![CDATA[{job}]]></JobId></xml>"
            );
            match parse_event(xml.as_bytes()) {
                Err(CallbackError::MalformedXml(why)) => {
                    assert_eq!(why, "JobId holds control or format characters")
                }
                other => panic!("{job:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn job_finish_without_job_id_or_time_is_an_error() {
        for bad in [
            "<xml><MsgType>event</MsgType><Event>upload_media_job_finish</Event><CreateTime>1</CreateTime></xml>",
            "<xml><MsgType>event</MsgType><Event>upload_media_job_finish</Event><CreateTime>1</CreateTime><JobId> </JobId></xml>",
            "<xml><MsgType>event</MsgType><Event>upload_media_job_finish</Event><JobId>j</JobId></xml>",
            "<xml><MsgType>event</MsgType><Event>upload_media_job_finish</Event><CreateTime>-1</CreateTime><JobId>j</JobId></xml>",
        ] {
            assert!(
                matches!(
                    parse_event(bad.as_bytes()),
                    Err(CallbackError::MalformedXml(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn envelope_round_trip_and_missing_encrypt() {
        let xml = envelope_xml("wx5823bf96d3bd56c7", Some("218"), "abc+/=");
        assert_eq!(
            xml,
            "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><AgentID><![CDATA[218]]></AgentID><Encrypt><![CDATA[abc+/=]]></Encrypt></xml>"
        );
        assert_eq!(
            parse_envelope(xml.as_bytes()).unwrap(),
            Envelope {
                to_user_name: Some("wx5823bf96d3bd56c7".into()),
                agent_id: Some("218".into()),
                encrypt: "abc+/=".into()
            }
        );
        let no_agent = envelope_xml("c", None, "e");
        assert!(!no_agent.contains("AgentID"));
        assert_eq!(parse_envelope(no_agent.as_bytes()).unwrap().agent_id, None);
        assert_eq!(
            parse_envelope(b"<xml><ToUserName>c</ToUserName></xml>"),
            Err(CallbackError::MissingParameter("Encrypt"))
        );
    }

    proptest! {
        #[test]
        fn produced_events_parse_back(
            corp in "\\PC{0,30}",
            time in any::<u64>(),
            job in "[^\\s\\p{C}]\\PC{0,40}[^\\s\\p{C}]",
        ) {
            let xml = event_xml_upload_media_job_finish(&corp, time, &JobId::new(job.clone()));
            let parsed = parse_event(xml.as_bytes()).unwrap();
            prop_assert_eq!(parsed, CallbackEvent::UploadMediaJobFinish {
                job_id: JobId::new(job),
                create_time: time,
                corp_id: corp.trim().to_owned(),
            });
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_event(&bytes);
            let _ = parse_envelope(&bytes);
        }

        #[test]
        fn parse_never_panics_on_xmlish_text(text in "[<>/!\\[\\]CDATxml&;#= a-z\"?-]{0,120}") {
            let _ = parse_event(text.as_bytes());
            let _ = parse_envelope(text.as_bytes());
        }
    }
}
