//! Google Play core: service-account JSON keys (`service_account`) and the OAuth access tokens
//! obtained with them (`token`).

pub mod service_account;
pub mod token;

pub use service_account::{
    MAX_SERVICE_ACCOUNT_BYTES, PackageName, PackageNameError, ServiceAccountError,
    ServiceAccountKey,
};
