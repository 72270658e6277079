import SPIOCoding

/// How `spio run --executor slurm` asks Slurm for resources: a study's `slurm:` block, with the
/// command line's options winning. Every field is optional; Slurm's defaults apply to what is unset.
package struct SlurmOptions: Codable, Equatable, Sendable {
    /// `--partition`.
    package var partition: String?
    /// `--time` per task, Slurm's format (`30`, `2:00:00`, `1-00:00:00`).
    package var time: String?
    /// `--mem` per task (`4G`, `16000M`).
    package var memory: String?
    /// `--cpus-per-task`; also the engine's threads in each task (default: `spio run --threads`).
    package var cpusPerTask: Int?
    /// The most tasks per array; longer stages are split into several arrays. Capped by the
    /// cluster's `MaxArraySize`, which is the default.
    package var maxArraySize: Int?
    /// The most tasks of one array running at once (`--array=...%N`).
    package var maxRunning: Int?
    /// Further `sbatch` options, passed as given (`--account=abc`, `--qos=short`).
    package var sbatch: [String] = []
    /// The program each task runs instead of this `spio` (another path to it on the compute
    /// nodes, or a wrapper that loads modules first); it gets `spio task`'s arguments.
    package var program: String?

    package init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case partition, time, memory, cpusPerTask, maxArraySize, maxRunning, sbatch, program
    }

    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        partition = try c.decodeIfPresent(String.self, forKey: .partition)
        time = try c.decodeIfPresent(String.self, forKey: .time)
        memory = try c.decodeIfPresent(String.self, forKey: .memory)
        cpusPerTask = try c.decodeIfPresent(Int.self, forKey: .cpusPerTask)
        maxArraySize = try c.decodeIfPresent(Int.self, forKey: .maxArraySize)
        maxRunning = try c.decodeIfPresent(Int.self, forKey: .maxRunning)
        sbatch = try c.decodeIfPresent([String].self, forKey: .sbatch) ?? []
        program = try c.decodeIfPresent(String.self, forKey: .program)
        for (key, value) in [
            (CodingKeys.cpusPerTask, cpusPerTask), (.maxArraySize, maxArraySize), (.maxRunning, maxRunning)
        ]
        where value.map({ $0 < 1 }) ?? false {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: c, debugDescription: "must be 1 or more, got \(value!)")
        }
    }

    /// These options with every field that `other` sets taken from it; `sbatch` options add up.
    package func overridden(by other: SlurmOptions) -> SlurmOptions {
        var o = self
        o.partition = other.partition ?? partition
        o.time = other.time ?? time
        o.memory = other.memory ?? memory
        o.cpusPerTask = other.cpusPerTask ?? cpusPerTask
        o.maxArraySize = other.maxArraySize ?? maxArraySize
        o.maxRunning = other.maxRunning ?? maxRunning
        o.sbatch = sbatch + other.sbatch
        o.program = other.program ?? program
        return o
    }
}
