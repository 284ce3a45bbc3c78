//! Running collector components: one fresh instance per collection (they run
//! rarely), with the `sql` capability limited to the granted data sources.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

use super::bindings::collector::{Collection, Collector, CollectorPre};
use super::failure::describe_plugin_error;
use super::redactor::classify;
use super::state::{Grants, HostState};
use super::{GuestFailure, ModuleSource, Runtime};
use crate::config::Limits;
use crate::datasource::DataSources;
use crate::report::{BaseInformation, CountParentType, InstanceInformation, ResourceCount};

/// What one collection produced, in host types.
#[derive(Debug, Clone, PartialEq)]
pub struct Collected {
    /// Resource counts.
    pub counts: Vec<ResourceCount>,
    /// Base information, when the module provides it.
    pub base: Option<BaseInformation>,
}

/// A loaded collector component.
pub struct CollectorModule {
    source: ModuleSource,
    runtime: Arc<Runtime>,
    pre: CollectorPre<HostState>,
    limits: Limits,
    grants: Grants,
}

impl CollectorModule {
    /// Compiles and links the module; `sources` are the data sources it may
    /// query, `wasi` the WASI access it is granted.
    pub fn new(
        runtime: Arc<Runtime>,
        source: ModuleSource,
        limits: Limits,
        config: BTreeMap<String, String>,
        data: Arc<DataSources>,
        sources: Vec<String>,
        wasi: crate::config::ModuleGrants,
    ) -> anyhow::Result<CollectorModule> {
        let component = source.compile(&runtime)?;
        let mut linker = Linker::<HostState>::new(runtime.engine());
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Collector::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
        let pre =
            linker.instantiate_pre(&component).and_then(CollectorPre::new).map_err(anyhow::Error::from).with_context(
                || {
                    format!(
                        "module {:?} ({}) does not implement the `collector` world of wasmtel:telemetry@0.2.0",
                        source.name, source.origin
                    )
                },
            )?;
        let grants = Grants {
            module: source.name.clone(),
            config: Arc::new(config),
            sql: Some((data, Arc::from(sources))),
            query_timeout: Duration::from_millis(limits.deadline_ms),
            log: Arc::new(super::state::LogBudget::new(&wasi, false)),
            wasi,
        };
        Ok(CollectorModule { source, runtime, pre, limits, grants })
    }

    /// The module's name, origin and digest.
    pub fn source(&self) -> &ModuleSource {
        &self.source
    }

    /// Runs one collection.
    pub fn collect(&self) -> Result<Collected, GuestFailure> {
        let memory_cap = (self.limits.memory_mib as usize) << 20;
        let mut store = Store::new(self.runtime.engine(), HostState::new(self.grants.clone(), memory_cap));
        store.limiter(|s| &mut s.limiter);
        Runtime::arm_deadline(&mut store, &self.limits);
        let bindings = self.pre.instantiate(&mut store).map_err(|e| classify(&store, &self.limits, e))?;
        Runtime::arm_deadline(&mut store, &self.limits);
        match bindings.call_collect(&mut store) {
            Ok(Ok(collection)) => Ok(convert(collection)),
            Ok(Err(e)) => Err(GuestFailure::PluginError(describe_plugin_error(&e))),
            Err(e) => Err(classify(&store, &self.limits, e)),
        }
    }
}

fn convert(c: Collection) -> Collected {
    use super::bindings::redactor::wasmtel::telemetry::types as wit;
    let time = |t: wit::Timestamp| crate::report::timestamp(t.seconds, t.nanos);
    Collected {
        counts: c
            .counts
            .into_iter()
            .map(|r| ResourceCount {
                instance_id: r.instance_id,
                parent_type: match r.parent_type {
                    wit::CountParentType::Instance => CountParentType::Instance,
                    wit::CountParentType::Organization => CountParentType::Organization,
                },
                parent_id: r.parent_id,
                resource_name: r.resource_name,
                table_name: r.table_name,
                updated_at: time(r.updated_at),
                amount: r.amount,
            })
            .collect(),
        base: c.base.map(|b| BaseInformation {
            version: b.version,
            instances: b
                .instances
                .into_iter()
                .map(|i| InstanceInformation { id: i.id, domains: i.domains, created_at: time(i.created_at) })
                .collect(),
        }),
    }
}
