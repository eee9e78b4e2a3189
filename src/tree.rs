//! Identity of the objects in a trust tree, shared by the store, the plan
//! and apply.

use std::fmt;

use crate::manifest::address;

/// One JWT-bearing object: an operator, an account or a user.
///
/// The derived order puts an operator before its accounts and an account
/// before its users, which is the order apply must sign in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    pub operator: String,
    pub account: Option<String>,
    pub user: Option<String>,
}

/// What kind of object an [`ObjectId`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Operator,
    Account,
    User,
}

impl ObjectId {
    pub fn operator(op: &str) -> Self {
        ObjectId {
            operator: op.to_string(),
            account: None,
            user: None,
        }
    }

    pub fn account(op: &str, acc: &str) -> Self {
        ObjectId {
            operator: op.to_string(),
            account: Some(acc.to_string()),
            user: None,
        }
    }

    pub fn user(op: &str, acc: &str, user: &str) -> Self {
        ObjectId {
            operator: op.to_string(),
            account: Some(acc.to_string()),
            user: Some(user.to_string()),
        }
    }

    pub fn kind(&self) -> ObjectKind {
        match (&self.account, &self.user) {
            (None, _) => ObjectKind::Operator,
            (Some(_), None) => ObjectKind::Account,
            (Some(_), Some(_)) => ObjectKind::User,
        }
    }

    /// The object's own name (operator, account or user name).
    pub fn name(&self) -> &str {
        self.user
            .as_deref()
            .or(self.account.as_deref())
            .unwrap_or(&self.operator)
    }

    /// The account this object belongs to, if it is an account or a user.
    pub fn account_id(&self) -> Option<ObjectId> {
        self.account
            .as_ref()
            .map(|a| ObjectId::account(&self.operator, a))
    }

    /// Stable address used in plans, the lock and messages.
    pub fn address(&self) -> String {
        match (&self.account, &self.user) {
            (None, _) => address::operator(&self.operator),
            (Some(a), None) => address::account(&self.operator, a),
            (Some(a), Some(u)) => address::user(&self.operator, a, u),
        }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address())
    }
}
