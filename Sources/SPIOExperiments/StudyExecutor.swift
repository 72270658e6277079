/// Where the planned runs of a study are computed: the seam a cluster executor plugs into
/// (docs/architecture.md). An executor decides where and in what order `Runner.run(_:study:)`
/// happens for each planned run; the runner decides what each run is and records it, and the store
/// hands every configuration hash to exactly one process (`RunStore.claim`), so an executor may
/// start runs in several processes or on several machines sharing the workspace.
package protocol StudyExecutor {
    /// Recorded in messages, e.g. `local`.
    var name: String { get }
    /// Computes (or reuses) every planned run of `plan`, calling `finished` with each run's index
    /// and outcome as it completes.
    func execute(_ plan: StudyPlan, runner: Runner, finished: (Int, Runner.Outcome) throws -> Void) throws
}

/// This process, one planned run after another.
package struct LocalExecutor: StudyExecutor {
    package let name = "local"
    package init() {}

    package func execute(_ plan: StudyPlan, runner: Runner, finished: (Int, Runner.Outcome) throws -> Void) throws {
        try runner.begin(plan)
        for (i, planned) in plan.runs.enumerated() {
            runner.log("[\(i + 1)/\(plan.runs.count)] \(planned.name)")
            try finished(i, try runner.run(planned, study: plan.study, description: plan.description))
        }
    }
}
