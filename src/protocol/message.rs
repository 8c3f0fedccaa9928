//! The message types of PROTOCOL.md §4 and the permission each needs (§7.2).

/// Every `type` the server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsgType {
    Ins,
    Qry,
    Cols,
    Qdoc,
    Ddoc,
    Dcol,
    Drec,
    Dmrec,
    Drrng,
    Sval,
    Gval,
    Gvalues,
    Rval,
    Gvals,
    Gkeys,
    Keys,
    Conn,
    Auth,
}

/// What a connection's scope must grant for a message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Write,
    Delete,
    /// `read_write_delete` scope and the master key.
    ManageKeys,
    /// Answered with its own error whatever the scope.
    None,
}

impl MsgType {
    pub const ALL: [MsgType; 18] = [
        MsgType::Ins,
        MsgType::Qry,
        MsgType::Cols,
        MsgType::Qdoc,
        MsgType::Ddoc,
        MsgType::Dcol,
        MsgType::Drec,
        MsgType::Dmrec,
        MsgType::Drrng,
        MsgType::Sval,
        MsgType::Gval,
        MsgType::Gvalues,
        MsgType::Rval,
        MsgType::Gvals,
        MsgType::Gkeys,
        MsgType::Keys,
        MsgType::Conn,
        MsgType::Auth,
    ];

    /// The wire name (case-sensitive).
    pub fn name(self) -> &'static str {
        match self {
            MsgType::Ins => "ins",
            MsgType::Qry => "qry",
            MsgType::Cols => "cols",
            MsgType::Qdoc => "qdoc",
            MsgType::Ddoc => "ddoc",
            MsgType::Dcol => "dcol",
            MsgType::Drec => "drec",
            MsgType::Dmrec => "dmrec",
            MsgType::Drrng => "drrng",
            MsgType::Sval => "sval",
            MsgType::Gval => "gval",
            MsgType::Gvalues => "gvalues",
            MsgType::Rval => "rval",
            MsgType::Gvals => "gvals",
            MsgType::Gkeys => "gkeys",
            MsgType::Keys => "keys",
            MsgType::Conn => "conn",
            MsgType::Auth => "auth",
        }
    }

    pub fn parse(name: &str) -> Option<MsgType> {
        MsgType::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn permission(self) -> Permission {
        use MsgType::*;
        match self {
            Qry | Cols | Qdoc | Gval | Gvalues | Gvals | Gkeys | Conn => Permission::Read,
            Ins | Sval => Permission::Write,
            Ddoc | Dcol | Drec | Dmrec | Drrng | Rval => Permission::Delete,
            Keys => Permission::ManageKeys,
            Auth => Permission::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for t in MsgType::ALL {
            assert_eq!(MsgType::parse(t.name()), Some(t));
        }
        assert_eq!(MsgType::parse("INS"), None);
        assert_eq!(MsgType::parse(""), None);
    }
}
