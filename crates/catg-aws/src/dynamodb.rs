//! DynamoDB as the manifest: one table, partition key `pk` (`src#<key>`, `ast#<fingerprint>`,
//! `var#<cache key>`). Every state change is a conditional write — the same conditions the
//! SQLite adapter expresses in SQL — and reads are strongly consistent. Pending claims carry a
//! TTL attribute (`expires_at`, epoch seconds) so abandoned claims disappear on their own.
//! They also carry `pending_asset` (the fingerprint), the key of the sparse index
//! [`PENDING_INDEX`]: a pending-job cap counts one asset's claims without a scan, and a finished
//! record, written whole without the attribute, leaves the index. Assets' perceptual-hash bands
//! are items of their own (`phb#…`), indexed by [`NEAR_DUPLICATE_INDEX`].

use crate::errors::map;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    Projection, ProjectionType, Put, ScalarAttributeType, Select, TransactWriteItem, Update,
};
use catg_core::model::{
    AssetFacts, AssetRecord, AssetState, Millis, Origin, SourceRecord, SourceState, SummaryText, VariantRecord,
    VariantState,
};
use catg_core::near_duplicates::{band_keys, Candidate};
use catg_core::ports::{Claim, ManifestStore, Page, StoreError, StoreResult};
use catg_core::{CacheKey, Fingerprint};
use catg_image::summary::phash_hex;
use catg_image::{OutputFormat, Summary};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// The sparse global secondary index of pending claims by asset (`pending_asset`).
pub const PENDING_INDEX: &str = "pending-by-asset";

/// The global secondary index of perceptual-hash bands (`phash_band`): each ready asset with a
/// summary has one small item per band (`pk` = `phb#<band key>#<fingerprint>`), written in the
/// same transaction as the asset, so near-duplicate candidates are eight queries, not a scan.
pub const NEAR_DUPLICATE_INDEX: &str = "near-duplicates-by-band";

/// How long after its lease a pending claim is deleted by DynamoDB's TTL.
const PENDING_TTL_GRACE_S: u64 = 24 * 3600;

#[derive(Debug, Clone)]
pub struct DynamoManifest {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoManifest {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> DynamoManifest {
        DynamoManifest { client, table: table.into() }
    }

    async fn get(&self, pk: String) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map("dynamodb get", e))?;
        Ok(out.item)
    }

    /// A conditional put: `Ok(false)` when the condition did not hold.
    async fn put_if(&self, item: Item, condition: &str, values: &[(&str, AttributeValue)]) -> StoreResult<bool> {
        let mut request =
            self.client.put_item().table_name(&self.table).set_item(Some(item)).condition_expression(condition);
        // Aliases keep attribute names clear of DynamoDB's reserved words.
        for alias in ["state", "origin"] {
            if condition.contains(&format!("#{alias}")) {
                request = request.expression_attribute_names(format!("#{alias}"), alias);
            }
        }
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) => match map("dynamodb put", e) {
                StoreError::Conflict(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    /// `update` on item `pk` if `condition` holds: `Ok(false)` when it did not (nothing written).
    async fn update_if(
        &self,
        pk: String,
        update: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> StoreResult<bool> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .update_expression(update)
            .condition_expression(condition);
        if update.contains("#origin") || condition.contains("#origin") {
            request = request.expression_attribute_names("#origin", "origin");
        }
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) => match map("dynamodb update", e) {
                StoreError::Conflict(_) => Ok(false),
                other => Err(other),
            },
        }
    }
}

impl DynamoManifest {
    /// `leading` (conditional writes and checks of assets) and one asset's band items in one
    /// transaction: the index never names an asset that is not there, nor misses one that is,
    /// nor disagrees with it on the group. `Ok(false)` when a condition did not hold (nothing
    /// was written).
    async fn transact_with_bands(
        &self,
        leading: Vec<TransactWriteItem>,
        fingerprint: &Fingerprint,
        phash: u64,
        group: Option<Fingerprint>,
    ) -> StoreResult<bool> {
        let mut request = self.client.transact_write_items().set_transact_items(Some(leading));
        for item in band_items(fingerprint, phash, group) {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            request = request.transact_items(TransactWriteItem::builder().put(put).build());
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let lost = e.as_service_error().is_some_and(|e| match e {
                    TransactWriteItemsError::TransactionCanceledException(cancelled) => cancelled
                        .cancellation_reasons()
                        .iter()
                        .any(|reason| reason.code() == Some("ConditionalCheckFailed")),
                    _ => false,
                });
                if lost {
                    return Ok(false);
                }
                Err(map("dynamodb transact", e))
            }
        }
    }

    /// A conditional delete of a variant record: `Ok(false)` when the condition did not hold.
    async fn delete_if(
        &self,
        cache_key: &CacheKey,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> StoreResult<bool> {
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("var#{cache_key}")))
            .condition_expression(condition)
            .expression_attribute_names("#state", "state");
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) => match map("dynamodb delete", e) {
                StoreError::Conflict(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    /// One page of a consistent Scan for items whose `pk` starts with `prefix`. The cursor is the
    /// last `pk` read (the table's whole key). DynamoDB applies `limit` before the filter, so a
    /// page can be empty and still have a next one.
    async fn scan_prefix(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<Item>, Option<String>)> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .filter_expression("begins_with(pk, :prefix)")
            .expression_attribute_values(":prefix", s(prefix))
            .limit(limit.clamp(1, 1000) as i32)
            .set_exclusive_start_key(after.map(|pk| HashMap::from([("pk".to_string(), s(pk))])))
            .send()
            .await
            .map_err(|e| map("dynamodb scan", e))?;
        let next = out.last_evaluated_key().and_then(|k| k.get("pk")).and_then(|v| v.as_s().ok()).cloned();
        Ok((out.items.unwrap_or_default(), next))
    }
}

/// Create the table (tests and local use; the SAM template creates it in AWS).
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> StoreResult<()> {
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attribute("pk")?)
        .attribute_definitions(string_attribute("pending_asset")?)
        .attribute_definitions(string_attribute("phash_band")?)
        .key_schema(hash_key("pk")?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(NEAR_DUPLICATE_INDEX)
                .key_schema(hash_key("phash_band")?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .non_key_attributes("fingerprint")
                        .non_key_attributes("phash")
                        .non_key_attributes("near_duplicate_of")
                        .build(),
                )
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))?,
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(PENDING_INDEX)
                .key_schema(hash_key("pending_asset")?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .non_key_attributes("lease_until_ms")
                        .build(),
                )
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))?,
        )
        .send()
        .await
        .map_err(|e| map("dynamodb create table", e))?;
    Ok(())
}

fn string_attribute(name: &str) -> StoreResult<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

fn hash_key(name: &str) -> StoreResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(KeyType::Hash)
        .build()
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn bad(what: &str) -> StoreError {
    StoreError::Unavailable(format!("dynamodb: malformed item ({what})"))
}

fn get_s<'a>(item: &'a Item, name: &str) -> StoreResult<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).ok_or_else(|| bad(name))
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> StoreResult<T> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).ok_or_else(|| bad(name))
}

fn get_bool(item: &Item, name: &str) -> StoreResult<bool> {
    item.get(name).and_then(|v| v.as_bool().ok()).copied().ok_or_else(|| bad(name))
}

fn fingerprint_of(item: &Item, name: &str) -> StoreResult<Fingerprint> {
    get_s(item, name)?.parse().map_err(|_| bad(name))
}

fn source_item(r: &SourceRecord) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("src#{}", r.key))),
        ("key".into(), s(&r.key)),
        ("fingerprint".into(), s(r.fingerprint.to_hex())),
        ("bytes".into(), n(r.bytes)),
        ("etag".into(), s(&r.etag)),
        ("state".into(), s(r.state.as_str())),
        ("updated_ms".into(), n(r.updated_ms)),
    ])
}

fn source_from(item: &Item) -> StoreResult<SourceRecord> {
    Ok(SourceRecord {
        key: get_s(item, "key")?.to_string(),
        fingerprint: fingerprint_of(item, "fingerprint")?,
        bytes: get_n(item, "bytes")?,
        etag: get_s(item, "etag")?.to_string(),
        state: SourceState::parse(get_s(item, "state")?).ok_or_else(|| bad("state"))?,
        updated_ms: get_n(item, "updated_ms")?,
    })
}

fn asset_item(r: &AssetRecord) -> Item {
    let mut item = HashMap::from([
        ("pk".into(), s(format!("ast#{}", r.fingerprint))),
        ("fingerprint".into(), s(r.fingerprint.to_hex())),
        ("bytes".into(), n(r.bytes)),
        ("first_seen_ms".into(), n(r.first_seen_ms)),
        ("source_key".into(), s(&r.source_key)),
    ]);
    match &r.state {
        AssetState::Ready(f) => {
            item.insert("state".into(), s("ready"));
            item.insert("format".into(), s(&f.format));
            item.insert("width".into(), n(f.width));
            item.insert("height".into(), n(f.height));
            item.insert("orientation".into(), n(f.orientation));
            item.insert("has_alpha".into(), AttributeValue::Bool(f.has_alpha));
            item.insert("frames".into(), n(f.frames));
            if let Some(summary) = &f.summary {
                let text = SummaryText::of(summary);
                item.insert("thumbhash".into(), s(text.thumbhash));
                item.insert("dominant_color".into(), s(text.dominant_color));
                item.insert("phash".into(), s(text.phash));
            }
            if let Some(group) = f.near_duplicate_of {
                item.insert("near_duplicate_of".into(), s(group.to_hex()));
            }
        }
        AssetState::Rejected { reason, message } => {
            item.insert("state".into(), s("rejected"));
            item.insert("reason".into(), s(reason));
            item.insert("message".into(), s(message));
        }
    }
    item
}

fn asset_from(item: &Item) -> StoreResult<AssetRecord> {
    let state = match get_s(item, "state")? {
        "ready" => AssetState::Ready(AssetFacts {
            format: get_s(item, "format")?.to_string(),
            width: get_n(item, "width")?,
            height: get_n(item, "height")?,
            orientation: get_n(item, "orientation")?,
            has_alpha: get_bool(item, "has_alpha")?,
            frames: get_n(item, "frames")?,
            summary: summary_from(item)?,
            near_duplicate_of: optional_fingerprint(item, "near_duplicate_of")?,
        }),
        "rejected" => AssetState::Rejected {
            reason: get_s(item, "reason")?.to_string(),
            message: get_s(item, "message")?.to_string(),
        },
        _ => return Err(bad("state")),
    };
    Ok(AssetRecord {
        fingerprint: fingerprint_of(item, "fingerprint")?,
        bytes: get_n(item, "bytes")?,
        state,
        first_seen_ms: get_n(item, "first_seen_ms")?,
        source_key: get_s(item, "source_key")?.to_string(),
    })
}

fn summary_from(item: &Item) -> StoreResult<Option<Summary>> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let (Some(thumbhash), Some(dominant_color), Some(phash)) =
        (text("thumbhash"), text("dominant_color"), text("phash"))
    else {
        return Ok(None);
    };
    SummaryText { thumbhash, dominant_color, phash }.parse().map(Some).ok_or_else(|| bad("summary"))
}

fn optional_fingerprint(item: &Item, name: &str) -> StoreResult<Option<Fingerprint>> {
    match item.get(name) {
        Some(_) => fingerprint_of(item, name).map(Some),
        None => Ok(None),
    }
}

/// The index items of an asset's hash bands.
fn band_items(fingerprint: &Fingerprint, phash: u64, group: Option<Fingerprint>) -> Vec<Item> {
    band_keys(phash)
        .into_iter()
        .map(|band| {
            let mut item = HashMap::from([
                ("pk".to_string(), s(format!("phb#{band:04x}#{fingerprint}"))),
                ("phash_band".to_string(), s(format!("{band:04x}"))),
                ("fingerprint".to_string(), s(fingerprint.to_hex())),
                ("phash".to_string(), s(phash_hex(phash))),
            ]);
            if let Some(group) = group {
                item.insert("near_duplicate_of".into(), s(group.to_hex()));
            }
            item
        })
        .collect()
}

fn variant_item(r: &VariantRecord) -> Item {
    let mut item = HashMap::from([
        ("pk".into(), s(format!("var#{}", r.cache_key))),
        ("cache_key".into(), s(r.cache_key.to_hex())),
        ("fingerprint".into(), s(r.fingerprint.to_hex())),
        ("canonical".into(), s(&r.canonical)),
        ("format".into(), s(r.format.as_str())),
        ("state".into(), s(r.state.name())),
        ("updated_ms".into(), n(r.updated_ms)),
    ]);
    if let Some(origin) = r.origin.stored() {
        item.insert("origin".into(), s(origin));
    }
    match &r.state {
        VariantState::Pending { lease_until_ms } => {
            item.insert("pending_asset".into(), s(r.fingerprint.to_hex()));
            item.insert("lease_until_ms".into(), n(lease_until_ms));
            item.insert("expires_at".into(), n(lease_until_ms / 1000 + PENDING_TTL_GRACE_S));
        }
        VariantState::Ready { object_key, bytes, render_ms } => {
            item.insert("object_key".into(), s(object_key));
            item.insert("bytes".into(), n(bytes));
            item.insert("render_ms".into(), n(render_ms));
        }
        VariantState::Failed { reason, message } => {
            item.insert("reason".into(), s(reason));
            item.insert("message".into(), s(message));
        }
    }
    item
}

fn variant_from(item: &Item) -> StoreResult<VariantRecord> {
    let state = match get_s(item, "state")? {
        "pending" => VariantState::Pending { lease_until_ms: get_n(item, "lease_until_ms")? },
        "ready" => VariantState::Ready {
            object_key: get_s(item, "object_key")?.to_string(),
            bytes: get_n(item, "bytes")?,
            render_ms: get_n(item, "render_ms")?,
        },
        "failed" => VariantState::Failed {
            reason: get_s(item, "reason")?.to_string(),
            message: get_s(item, "message")?.to_string(),
        },
        _ => return Err(bad("state")),
    };
    Ok(VariantRecord {
        cache_key: get_s(item, "cache_key")?.parse::<CacheKey>().map_err(|_| bad("cache_key"))?,
        fingerprint: fingerprint_of(item, "fingerprint")?,
        canonical: get_s(item, "canonical")?.to_string(),
        format: OutputFormat::parse(get_s(item, "format")?).ok_or_else(|| bad("format"))?,
        state,
        updated_ms: get_n(item, "updated_ms")?,
        origin: Origin::from_stored(item.get("origin").and_then(|v| v.as_s().ok()).map(String::as_str)),
    })
}

#[async_trait]
impl ManifestStore for DynamoManifest {
    async fn source(&self, key: &str) -> StoreResult<Option<SourceRecord>> {
        self.get(format!("src#{key}")).await?.as_ref().map(source_from).transpose()
    }

    async fn put_source(&self, record: &SourceRecord) -> StoreResult<()> {
        // The newest observation wins; an older one (a late, reordered event) changes nothing.
        self.put_if(
            source_item(record),
            "attribute_not_exists(pk) OR updated_ms <= :u",
            &[(":u", n(record.updated_ms))],
        )
        .await
        .map(|_| ())
    }

    async fn asset(&self, fingerprint: &Fingerprint) -> StoreResult<Option<AssetRecord>> {
        self.get(format!("ast#{fingerprint}")).await?.as_ref().map(asset_from).transpose()
    }

    async fn create_asset(&self, record: &AssetRecord) -> StoreResult<bool> {
        let AssetState::Ready(AssetFacts { summary: Some(summary), near_duplicate_of, .. }) = &record.state else {
            return self.put_if(asset_item(record), "attribute_not_exists(pk)", &[]).await;
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(asset_item(record)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let first = TransactWriteItem::builder().put(put).build();
        self.transact_with_bands(vec![first], &record.fingerprint, summary.phash, *near_duplicate_of).await
    }

    async fn set_asset_summary(
        &self,
        fingerprint: &Fingerprint,
        summary: &Summary,
        near_duplicate_of: Option<Fingerprint>,
    ) -> StoreResult<bool> {
        let text = SummaryText::of(summary);
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("ast#{fingerprint}")))
            .condition_expression("#state = :ready AND attribute_not_exists(phash)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":ready", s("ready"))
            .expression_attribute_values(":thumbhash", s(text.thumbhash))
            .expression_attribute_values(":colour", s(text.dominant_color))
            .expression_attribute_values(":phash", s(text.phash));
        update = match near_duplicate_of {
            Some(group) => update
                .update_expression(
                    "SET thumbhash = :thumbhash, dominant_color = :colour, phash = :phash, near_duplicate_of = :group",
                )
                .expression_attribute_values(":group", s(group.to_hex())),
            None => update.update_expression("SET thumbhash = :thumbhash, dominant_color = :colour, phash = :phash"),
        };
        let first = TransactWriteItem::builder()
            .update(update.build().map_err(|e| StoreError::Invalid(e.to_string()))?)
            .build();
        self.transact_with_bands(vec![first], fingerprint, summary.phash, near_duplicate_of).await
    }

    async fn join_near_duplicate_group(
        &self,
        member: &Fingerprint,
        member_phash: u64,
        first: &Fingerprint,
    ) -> StoreResult<bool> {
        // Both the member and its first must be ready, summarised assets without a group.
        const STARTS_OWN_GROUP: &str =
            "#state = :ready AND attribute_exists(phash) AND attribute_not_exists(near_duplicate_of)";
        if member == first {
            return Ok(false);
        }
        let join = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("ast#{member}")))
            .update_expression("SET near_duplicate_of = :group")
            .condition_expression(STARTS_OWN_GROUP)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":ready", s("ready"))
            .expression_attribute_values(":group", s(first.to_hex()))
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let first_still_first = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(format!("ast#{first}")))
            .condition_expression(STARTS_OWN_GROUP)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":ready", s("ready"))
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let leading = vec![
            TransactWriteItem::builder().update(join).build(),
            TransactWriteItem::builder().condition_check(first_still_first).build(),
        ];
        self.transact_with_bands(leading, member, member_phash, Some(*first)).await
    }

    async fn near_duplicate_candidates(&self, phash: u64, limit: usize) -> StoreResult<Vec<Candidate>> {
        let mut found: Vec<Candidate> = Vec::new();
        for band in band_keys(phash) {
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(NEAR_DUPLICATE_INDEX)
                    .key_condition_expression("phash_band = :band")
                    .expression_attribute_values(":band", s(format!("{band:04x}")))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| map("dynamodb query", e))?;
                for item in out.items() {
                    let candidate = Candidate {
                        fingerprint: fingerprint_of(item, "fingerprint")?,
                        phash: u64::from_str_radix(get_s(item, "phash")?, 16).map_err(|_| bad("phash"))?,
                        near_duplicate_of: optional_fingerprint(item, "near_duplicate_of")?,
                    };
                    if !found.iter().any(|c| c.fingerprint == candidate.fingerprint) {
                        found.push(candidate);
                    }
                    if found.len() >= limit {
                        return Ok(found);
                    }
                }
                start = out.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
        Ok(found)
    }

    async fn asset_page(&self, after: Option<&str>, limit: usize) -> StoreResult<Page<AssetRecord>> {
        let (items, next) = self.scan_prefix("ast#", after, limit).await?;
        Ok(Page { items: items.iter().map(asset_from).collect::<StoreResult<_>>()?, next })
    }

    async fn set_asset_source(&self, fingerprint: &Fingerprint, source_key: &str) -> StoreResult<()> {
        // A missing asset is not an error: there is nothing to point at the source.
        self.update_if(
            format!("ast#{fingerprint}"),
            "SET source_key = :k",
            "attribute_exists(pk)",
            &[(":k", s(source_key))],
        )
        .await
        .map(drop)
    }

    async fn variant(&self, key: &CacheKey) -> StoreResult<Option<VariantRecord>> {
        self.get(format!("var#{key}")).await?.as_ref().map(variant_from).transpose()
    }

    async fn claim_variant(&self, record: &VariantRecord, now: Millis) -> StoreResult<Claim> {
        let claimed = self
            .put_if(
                variant_item(record),
                "attribute_not_exists(pk) OR (#state = :pending AND lease_until_ms < :now)",
                &[(":pending", s("pending")), (":now", n(now))],
            )
            .await?;
        if claimed {
            return Ok(Claim::Claimed);
        }
        let current = self.variant(&record.cache_key).await?.ok_or_else(|| bad("claimed variant vanished"))?;
        Ok(Claim::Held(current))
    }

    async fn finish_variant(&self, record: &VariantRecord) -> StoreResult<bool> {
        self.put_if(variant_item(record), "attribute_not_exists(pk) OR #state <> :ready", &[(":ready", s("ready"))])
            .await
    }

    async fn reclaim_lost_variant(&self, record: &VariantRecord, lost_object_key: &str) -> StoreResult<bool> {
        self.put_if(
            variant_item(record),
            "#state = :ready AND object_key = :lost",
            &[(":ready", s("ready")), (":lost", s(lost_object_key))],
        )
        .await
    }

    async fn take_over_prewarm_claim(&self, record: &VariantRecord, seen: &VariantRecord) -> StoreResult<bool> {
        let VariantState::Pending { lease_until_ms } = seen.state else { return Ok(false) };
        self.put_if(
            variant_item(record),
            "#state = :pending AND #origin = :prewarmed AND lease_until_ms = :lease",
            &[(":pending", s("pending")), (":prewarmed", s("prewarmed")), (":lease", n(lease_until_ms))],
        )
        .await
    }

    async fn mark_prewarm_served(&self, key: &CacheKey) -> StoreResult<bool> {
        self.update_if(
            format!("var#{key}"),
            "SET #origin = :served",
            "#origin = :prewarmed",
            &[(":served", s("prewarmed_served")), (":prewarmed", s("prewarmed"))],
        )
        .await
    }

    async fn release_claim(&self, record: &VariantRecord) -> StoreResult<bool> {
        let VariantState::Pending { lease_until_ms } = record.state else { return Ok(false) };
        self.delete_if(
            &record.cache_key,
            "#state = :pending AND lease_until_ms = :lease",
            &[(":pending", s("pending")), (":lease", n(lease_until_ms))],
        )
        .await
    }

    async fn forget_variant(&self, seen: &VariantRecord) -> StoreResult<bool> {
        self.delete_if(
            &seen.cache_key,
            "#state = :state AND updated_ms = :updated",
            &[(":state", s(seen.state.name())), (":updated", n(seen.updated_ms))],
        )
        .await
    }

    async fn source_page(&self, after: Option<&str>, limit: usize) -> StoreResult<Page<SourceRecord>> {
        let (items, next) = self.scan_prefix("src#", after, limit).await?;
        Ok(Page { items: items.iter().map(source_from).collect::<StoreResult<_>>()?, next })
    }

    async fn variant_page(&self, after: Option<&str>, limit: usize) -> StoreResult<Page<VariantRecord>> {
        let (items, next) = self.scan_prefix("var#", after, limit).await?;
        Ok(Page { items: items.iter().map(variant_from).collect::<StoreResult<_>>()?, next })
    }

    async fn pending_variants(&self, fingerprint: &Fingerprint, now_ms: Millis, limit: u64) -> StoreResult<u64> {
        // The index is eventually consistent: a claim made a moment ago may not be counted yet,
        // which a cap can afford.
        let (mut counted, mut start) = (0u64, None);
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(PENDING_INDEX)
                .key_condition_expression("pending_asset = :fingerprint")
                .filter_expression("lease_until_ms > :now")
                .expression_attribute_values(":fingerprint", s(fingerprint.to_hex()))
                .expression_attribute_values(":now", n(now_ms))
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| map("dynamodb query", e))?;
            counted += out.count.max(0) as u64;
            start = out.last_evaluated_key;
            if counted >= limit || start.is_none() {
                return Ok(counted.min(limit));
            }
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        self.client.describe_table().table_name(&self.table).send().await.map_err(|e| map("dynamodb describe", e))?;
        Ok(())
    }
}
