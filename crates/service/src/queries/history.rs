//! The team's history: events newest first, each with its deliveries and their destinations' names.

use std::collections::HashMap;
use std::sync::Arc;

use super::QueryError;
use crate::model::{DeliveryRecord, EventQuery, EventRecord, Team};
use crate::ports::{DestinationStore, StoreError, SweepStore};

/// Events per page unless the filter says otherwise.
pub const DEFAULT_EVENTS_LIMIT: u32 = 50;
pub const MAX_EVENTS_LIMIT: u32 = 100;

/// Which events, and which page of them. Blank strings count as absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    pub app_id: Option<String>,
    pub event_type: Option<String>,
    /// Case-insensitive text to find in the summary or the event's data.
    pub text: Option<String>,
    /// 1 to [`MAX_EVENTS_LIMIT`]; [`DEFAULT_EVENTS_LIMIT`] when absent.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HistoryPage {
    pub events: Vec<HistoryEvent>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEvent {
    pub event: EventRecord,
    pub deliveries: Vec<HistoryDelivery>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HistoryDelivery {
    pub delivery: DeliveryRecord,
    /// `None` once the destination has been deleted.
    pub destination_name: Option<String>,
}

#[derive(Clone)]
pub struct HistoryQuery {
    sweeps: Arc<dyn SweepStore>,
    destinations: Arc<dyn DestinationStore>,
}

impl HistoryQuery {
    pub fn new(sweeps: Arc<dyn SweepStore>, destinations: Arc<dyn DestinationStore>) -> Self {
        Self {
            sweeps,
            destinations,
        }
    }

    pub async fn page(
        &self,
        team: &Team,
        filter: HistoryFilter,
    ) -> Result<HistoryPage, QueryError> {
        let limit = match filter.limit {
            None => DEFAULT_EVENTS_LIMIT,
            Some(n) if (1..=MAX_EVENTS_LIMIT).contains(&n) => n,
            Some(_) => {
                return Err(QueryError::InvalidLimit {
                    max: MAX_EVENTS_LIMIT,
                });
            }
        };
        let event_type = non_blank(filter.event_type);
        if event_type
            .as_deref()
            .is_some_and(|wanted| !crate::domain::routing::is_known_event_type(wanted))
        {
            return Err(QueryError::UnknownEventType);
        }
        let query = EventQuery {
            app_id: non_blank(filter.app_id),
            event_type,
            text: non_blank(filter.text),
            limit,
            cursor: non_blank(filter.cursor),
        };
        let page = self
            .sweeps
            .list_events(&team.id, &query)
            .await
            .map_err(|err| match err {
                // The stores answer `Corrupt` for a cursor that does not decode.
                StoreError::Corrupt(_) if query.cursor.is_some() => QueryError::InvalidCursor,
                other => other.into(),
            })?;
        let destination_names: HashMap<String, String> = self
            .destinations
            .list_destinations(&team.id)
            .await?
            .into_iter()
            .map(|d| (d.id.0, d.name))
            .collect();
        let events = page
            .items
            .into_iter()
            .map(|item| HistoryEvent {
                event: item.event,
                deliveries: item
                    .deliveries
                    .into_iter()
                    .map(|delivery| HistoryDelivery {
                        destination_name: destination_names
                            .get(delivery.destination_id.as_str())
                            .cloned(),
                        delivery,
                    })
                    .collect(),
            })
            .collect();
        Ok(HistoryPage {
            events,
            next_cursor: page.next_cursor,
        })
    }
}

fn non_blank(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}
