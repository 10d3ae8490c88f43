//! How a command ends: [`Exit`], the one list of exit codes, and [`Failure`], an exit code
//! with the message printed on standard error. Every failure is made by one of `Failure`'s
//! constructors, so that no call site writes a number.

use std::process::ExitCode;

use crate::connect;

/// The exit codes of `streamgate` (and `streamgate-bench`), as `--help` lists them.
pub const EXIT_CODES: &str = "Exit codes: 0 ok, 1 request refused by the server, 2 bad command line, \
3 server or Kafka unreachable, 130 interrupted.";

/// An exit code: the only place they are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Success (also a closed output pipe: whoever read the output had enough).
    Ok = 0,
    /// The server refused the request, or a check failed (`health` not SERVING).
    Refused = 1,
    /// Bad command line, or a local input that cannot be used (a file, a flag's value).
    Usage = 2,
    /// The server or its Kafka cluster cannot be reached.
    Unreachable = 3,
    /// Interrupted (Ctrl-C), as a shell reports a process killed by SIGINT.
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// A failure: the exit code it maps to and what to print (nothing when empty).
#[derive(Debug)]
pub struct Failure {
    exit: Exit,
    message: String,
}

impl Failure {
    fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }

    /// The server answered with an error status.
    pub fn from_status(status: &tonic::Status) -> Self {
        use tonic::Code;
        // TLS 1.3 lets a client finish its handshake before the server has checked the
        // client's certificate: a refusal then arrives as the first call's error.
        if let Some(tls) = connect::tls_failure(status) {
            return Self::unreachable(format!("TLS: the server refused the connection: {tls}"));
        }
        // A status tonic made from a transport error (one the server sent has no source): the
        // connection broke under the call, e.g. a TLS server that refused the client's
        // certificate and closed before its alert was read.
        if let (Code::Unknown | Code::Cancelled, Some(source)) =
            (status.code(), std::error::Error::source(status))
        {
            return Self::unreachable(format!(
                "the connection to the server broke: {} (over TLS: does the server want a client certificate? see --tls-cert)",
                source_chain(source)
            ));
        }
        let exit = match status.code() {
            Code::Unavailable | Code::DeadlineExceeded => Exit::Unreachable,
            Code::Cancelled => Exit::Interrupted,
            _ => Exit::Refused,
        };
        let mut message = if status.message().is_empty() {
            format!("{:?}", status.code())
        } else {
            status.message().to_owned()
        };
        if status.code() == Code::Unauthenticated {
            message.push_str(" (pass --token or set STREAMGATE_TOKEN)");
        }
        Self::new(exit, format!("{}: {message}", code_name(status.code())))
    }

    /// Exit with `exit` and nothing more to say (the output said it).
    pub fn silent(exit: Exit) -> Self {
        Self::new(exit, String::new())
    }

    /// The server refused, or the command could not do what it was asked (exit code 1).
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(Exit::Refused, message)
    }

    /// A local problem: bad input file, bad flag value (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    /// The server cannot be reached (exit code 3).
    pub fn unreachable(message: impl Into<String>) -> Self {
        Self::new(Exit::Unreachable, message)
    }

    /// Ctrl-C (exit code 130, nothing printed).
    pub fn interrupted() -> Self {
        Self::silent(Exit::Interrupted)
    }

    /// Writing the output failed: a closed pipe is success with nothing more to say,
    /// anything else exit code 1.
    pub fn io(error: std::io::Error) -> Self {
        let exit = if error.kind() == std::io::ErrorKind::BrokenPipe {
            Exit::Ok
        } else {
            Exit::Refused
        };
        Self::new(exit, error.to_string())
    }

    /// The exit code.
    pub fn exit(&self) -> Exit {
        self.exit
    }

    /// Ends the command: prints the message, if any, as `program: message` on standard
    /// error (not for a closed pipe), and returns the exit code.
    pub fn report(self, program: &str) -> ExitCode {
        if self.exit != Exit::Ok && !self.message.is_empty() {
            eprintln!("{program}: {}", self.message);
        }
        self.exit.into()
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Self::from_status(&status)
    }
}

/// The SCREAMING_CASE name of a gRPC code (`PERMISSION_DENIED`), like grpcurl and every
/// gRPC doc.
pub fn code_name(code: tonic::Code) -> String {
    let debug = format!("{code:?}");
    let mut name = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// `error` and each of its causes, joined with `: `.
pub(crate) fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_named_as_grpc_docs_name_them() {
        assert_eq!(
            code_name(tonic::Code::PermissionDenied),
            "PERMISSION_DENIED"
        );
        assert_eq!(code_name(tonic::Code::Ok), "OK");
    }

    #[test]
    fn statuses_map_to_their_exit_codes() {
        let exit = |status: tonic::Status| Failure::from(status).exit();
        assert_eq!(exit(tonic::Status::unavailable("down")), Exit::Unreachable);
        assert_eq!(
            exit(tonic::Status::deadline_exceeded("slow")),
            Exit::Unreachable
        );
        assert_eq!(exit(tonic::Status::cancelled("stop")), Exit::Interrupted);
        assert_eq!(exit(tonic::Status::permission_denied("no")), Exit::Refused);
        let broken = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(Failure::io(broken).exit(), Exit::Ok);
        assert_eq!(Exit::Interrupted as u8, 130);
    }
}
