//! The scoring stage: workers publish a fixed-size feature record per
//! flow (`features`), and a model (`model`: XGBoost JSON, evaluated exactly
//! as XGBoost does) scores it.

pub mod features;
pub mod model;
