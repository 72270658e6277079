import Foundation
import SPIOCoding
import SPIONetworks

/// The `training` block of an experiment (networks.md, paper section 4.4). Unknown keys are errors.
package struct TrainingConfig: Codable, Equatable, Sendable {
    /// Passes over the training set.
    package var epochs = 10
    /// Mini-batch size (the paper's 32).
    package var batchSize = 32
    /// Adam's step size. The paper's 1e-5 is for 4 million images; our short CPU runs use more.
    package var learningRate = 1e-3
    package var beta1 = 0.9
    package var beta2 = 0.999
    /// lambda of the loss term lambda ||theta||^2 (the paper does not give it).
    package var l2 = 1e-6
    /// Seeds the initial weights and each epoch's shuffle (stream = epoch).
    package var seed: UInt64 = 1
    /// The last fraction of the dataset is held out for the per-epoch validation NMAE.
    package var validationFraction = 0.1
    /// Recipe change (not the paper's): the first `mseWarmupSteps` Adam steps minimise the mean
    /// squared error of the targets instead of the paper's loss. A mean-seeking loss has a gradient
    /// away from the all-zero map, where the per-band normalised L1 has its plateau (the median of
    /// mostly-zero targets is zero). 0, the default, is the paper's loss throughout.
    package var mseWarmupSteps = 0
    /// Linear learning-rate warm-up over the first `warmupSteps` steps (0: none, the paper's).
    package var warmupSteps = 0
    /// Recipe change at the switch from the MSE warm-up to the paper's loss: the learning rate
    /// ramps up again from 0 over this many steps, while Adam's moment estimates, made on the
    /// squared error's gradients, adapt to the new loss's (0: none, a hard switch).
    package var switchWarmupSteps = 0
    /// The loss's eps in ||a - a^||_1 / (||a||_1 + eps) (networks.md's 1e-6 guards all-zero bands).
    /// A recipe variant: an eps near a small image's band norm stops the images with the least iron
    /// from dominating a batch.
    package var lossEpsilon = 1e-6
    /// Recipe variant: a weight per wavelet band in the loss (LL, LH, HL, HH); absent: all 1, the
    /// paper's. Only for models that predict the four bands.
    package var bandWeights: [Double]? = nil
    /// Recipe variant: adds this weight times the normalised L1 of the image (the inverse db4
    /// transform of the predicted bands against the concentration map) to the paper's band loss.
    /// 0, the default, is the paper's loss. Only for models that predict the four bands.
    package var imageTermWeight = 0.0
    /// Which code trains (docs/gpu.md): this project's CPU engine, or PyTorch in a child process
    /// (`python/spio_torch`) on the same data, batches, loss and checkpoints.
    package var backend = Backend.swift
    /// The torch backend's device: `auto` (CUDA when PyTorch sees it, else the CPU), `cpu`, `cuda`
    /// or `cuda:N`. The device a run used is recorded in its params.
    package var device = "auto"
    /// The torch backend's processes (`torchrun --nproc_per_node`, one per GPU, DDP): each takes its
    /// share of every batch, BatchNorm synchronised across GPUs.
    package var processes = 1

    /// The trainer behind `training.backend`.
    package enum Backend: String, Codable, CaseIterable, Sendable { case swift, torch }

    package init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case epochs, batchSize, learningRate, beta1, beta2, l2, seed, validationFraction, mseWarmupSteps, warmupSteps
        case switchWarmupSteps, lossEpsilon, bandWeights, imageTermWeight
        case backend, device, processes
    }

    /// The recipe keys are written only when set, so that configurations without them keep the
    /// canonical JSON, and so the hashes, they always had.
    package func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(epochs, forKey: .epochs); try c.encode(batchSize, forKey: .batchSize)
        try c.encode(learningRate, forKey: .learningRate); try c.encode(beta1, forKey: .beta1);
        try c.encode(beta2, forKey: .beta2)
        try c.encode(l2, forKey: .l2); try c.encode(seed, forKey: .seed);
        try c.encode(validationFraction, forKey: .validationFraction)
        if mseWarmupSteps != 0 { try c.encode(mseWarmupSteps, forKey: .mseWarmupSteps) }
        if warmupSteps != 0 { try c.encode(warmupSteps, forKey: .warmupSteps) }
        if switchWarmupSteps != 0 { try c.encode(switchWarmupSteps, forKey: .switchWarmupSteps) }
        if lossEpsilon != 1e-6 { try c.encode(lossEpsilon, forKey: .lossEpsilon) }
        try c.encodeIfPresent(bandWeights, forKey: .bandWeights)
        if imageTermWeight != 0 { try c.encode(imageTermWeight, forKey: .imageTermWeight) }
        // The engine's runs keep their hashes; a torch run is another run (its numbers differ in
        // the last bits, and more on a GPU).
        if backend != .swift { try c.encode(backend, forKey: .backend) }
        if device != "auto" { try c.encode(device, forKey: .device) }
        if processes != 1 { try c.encode(processes, forKey: .processes) }
    }

    /// The learning rate of Adam step `step` (0-based): linear warm-up, then constant, and a linear
    /// ramp again over `switchWarmupSteps` after the MSE warm-up.
    package func learningRate(atStep step: Int) -> Double {
        var rate =
            warmupSteps > 0 && step < warmupSteps ? learningRate * Double(step + 1) / Double(warmupSteps) : learningRate
        let sinceSwitch = step - mseWarmupSteps
        if mseWarmupSteps > 0, switchWarmupSteps > 0, sinceSwitch >= 0, sinceSwitch < switchWarmupSteps {
            rate *= Double(sinceSwitch + 1) / Double(switchWarmupSteps)
        }
        return rate
    }

    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&epochs, .epochs); try c.update(&batchSize, .batchSize)
        try c.update(&learningRate, .learningRate); try c.update(&beta1, .beta1); try c.update(&beta2, .beta2)
        try c.update(&l2, .l2); try c.update(&seed, .seed); try c.update(&validationFraction, .validationFraction)
        try c.update(&mseWarmupSteps, .mseWarmupSteps); try c.update(&warmupSteps, .warmupSteps)
        try c.update(&switchWarmupSteps, .switchWarmupSteps)
        try c.update(&lossEpsilon, .lossEpsilon); try c.update(&imageTermWeight, .imageTermWeight)
        if let w = try c.decodeIfPresent([Double].self, forKey: .bandWeights) { bandWeights = w }
        try c.update(&backend, .backend); try c.update(&device, .device); try c.update(&processes, .processes)
        if let problem {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: problem))
        }
    }

    /// The first out-of-range value, in words, or nil.
    package var problem: String? {
        if epochs < 1 || epochs > 100_000 { return "epochs must be 1 to 100000, got \(epochs)" }
        if batchSize < 2 || batchSize > 4096 {
            return "batchSize must be 2 to 4096 (BatchNorm needs batch statistics), got \(batchSize)"
        }
        if !(learningRate > 0 && learningRate <= 10) { return "learningRate must lie in (0, 10], got \(learningRate)" }
        if !(0..<1).contains(beta1) || !(0..<1).contains(beta2) { return "beta1 and beta2 must lie in [0, 1)" }
        if !(l2 >= 0 && l2 <= 1) { return "l2 must lie in [0, 1], got \(l2)" }
        if !(0...10_000_000).contains(mseWarmupSteps) || !(0...10_000_000).contains(warmupSteps)
            || !(0...10_000_000).contains(switchWarmupSteps)
        {
            return "mseWarmupSteps, warmupSteps and switchWarmupSteps must be 0 to 10000000"
        }
        if switchWarmupSteps > 0 && mseWarmupSteps == 0 {
            return "switchWarmupSteps ramps the learning rate after the MSE warm-up; set mseWarmupSteps too"
        }
        if !(lossEpsilon > 0 && lossEpsilon <= 1e9) { return "lossEpsilon must lie in (0, 1e9], got \(lossEpsilon)" }
        if let w = bandWeights,
            w.count != 4 || !w.allSatisfy({ $0 >= 0 && $0 <= 1000 }) || !w.contains(where: { $0 > 0 })
        {
            return "bandWeights must be 4 weights (LL, LH, HL, HH) from 0 to 1000, not all 0, got \(w)"
        }
        if !(imageTermWeight >= 0 && imageTermWeight <= 1000) {
            return "imageTermWeight must lie in [0, 1000], got \(imageTermWeight)"
        }
        if backend == .swift && (device != "auto" || processes != 1) {
            return "device and processes choose where the torch backend trains; set backend: torch, or leave them out"
        }
        if !(device == "auto" || device == "cpu" || device == "cuda"
            || (device.hasPrefix("cuda:") && Int(device.dropFirst(5)).map { $0 >= 0 } == true))
        {
            return "device must be auto, cpu, cuda or cuda:N, got '\(device)'"
        }
        if !(1...64).contains(processes) { return "processes must be 1 to 64, got \(processes)" }
        if !(validationFraction >= 0 && validationFraction < 1) {
            return "validationFraction must lie in [0, 1), got \(validationFraction)"
        }
        return nil
    }

    /// Why the loss variants do not fit `model`, or nil: band weights and the image term need
    /// the four wavelet bands.
    package func lossProblem(for model: ModelConfig) -> String? {
        guard !model.predictsWaveletBands, bandWeights != nil || imageTermWeight != 0 else { return nil }
        return "bandWeights and imageTermWeight need a model that predicts the four wavelet bands; this one "
            + "predicts the image (\(model.architecture.rawValue), head \(model.head.rawValue))"
    }

    /// Canonical JSON (sorted keys).
    package var json: String { canonicalJSON(self) }

    /// This configuration for any run length: what runs of one lineage share. Every epoch depends
    /// only on the ones before it (shuffle stream = epoch), so a finished run continued to more
    /// epochs ends exactly where a longer run would.
    package var anyLength: TrainingConfig {
        var c = self
        c.epochs = 0
        return c
    }

    /// `anyLength` whoever computes it: what a checkpoint folder must match to be resumed. Both
    /// backends write the same folders, on any device and process count, so either resumes the
    /// other's (a study's lineage keeps them apart, since their arithmetic differs).
    package var checkpointCompatible: TrainingConfig {
        var c = anyLength
        c.backend = .swift
        c.device = TrainingConfig().device
        c.processes = 1
        return c
    }
}
