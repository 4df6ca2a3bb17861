import Logging
import Seams

extension ClusterAgent {
    /// Compares this node's Kubo with what PostgreSQL places here, both ways, touching only pins
    /// anchorage made (named `kuboPinName`): a placement PostgreSQL calls pinned whose pin is
    /// missing is queued again; an anchorage pin no placement wants (and no pending unpin owns)
    /// is removed. At most `reconcileMaxRepairs` of each per round. Kubo is read first: a pin
    /// created meanwhile can then only look "missing" (a harmless re-pin), never "orphaned".
    func reconcileStep() async {
        guard let kubo else { return }
        let now = clock.now()
        guard now >= nextReconcile else { return }
        nextReconcile = now.adding(seconds: settings.reconcileSeconds)
        do {
            let ours = Set(try await kubo.recursivePins(named: settings.kuboPinName).map(\.cid))
            let placed = try await store.placedCIDs(node: node)
            let pending = try await store.pendingUnpins(node: node)
            let missing = placed.pinned.subtracting(ours).sorted().prefix(settings.reconcileMaxRepairs)
            let orphans = ours.subtracting(placed.all).subtracting(pending).sorted().prefix(settings.reconcileMaxRepairs)
            if !missing.isEmpty {
                let dispatches = try await store.repin(node: node, cids: Array(missing), reason: "missing from Kubo (reconciler)", now: now)
                status.repaired += missing.count
                await publish(dispatches)
            }
            for cid in orphans {
                try await kubo.unpin(cid: cid)
                status.orphansUnpinned += 1
            }
            if !missing.isEmpty || !orphans.isEmpty {
                logger.notice("reconciled Kubo with PostgreSQL", metadata: ["repinned": "\(missing.count)", "unpinned": "\(orphans.count)"])
            }
        } catch is CancellationError {
            return  // shutting down: the next start reconciles
        } catch {
            logger.warning("reconciler round failed", metadata: ["error": "\(error)"])
        }
    }
}
