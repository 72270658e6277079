/// The versions inside the run store's keys, side by side. Each stands for a change of results
/// that no configuration shows, so that finished runs of the old kind are never reused for the new.
/// Change one only with the change it names; every run it keys is then computed again.
package enum KeyVersion {
    /// Part of every dataset's key (`SimulatedDataset.contentHash`): change it whenever the
    /// simulator's output changes for the same configuration (physics, sampling, random streams).
    package static let generator = "view-line-simulator 3"
    /// Part of the key of noisy datasets only: change it when the noise drawn for the same
    /// configuration changes. (Since the SNR reference became the SPIO-free signal; noise-free sets
    /// kept the keys they had before it existed.)
    package static let noise = "noise reference: SPIO-free signal"
    /// Part of every evaluation's key (`RunIdentity.evaluation`): change it when evaluations
    /// measure something new, so that cached evaluations are measured again. 2: RMSE, HFEN, SSIM
    /// and the total-iron error; 3: each image's mean true and estimated concentration over its SPIO.
    package static let metrics = 3
}
