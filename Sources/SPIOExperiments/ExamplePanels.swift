import SPIOImageIO
import SPIOPlots
import SPIOTraining

/// Input channel 0, truth and prediction of test images as colour-mapped panels: rows for an
/// evaluation's `examples.png`, columns for a report's strips.
enum ExamplePanels {
    static func render(_ result: EvaluationResult, count: Int) -> RGBImage {
        ImagePanel.column(
            (0..<count).map { s in
                ImagePanel.row(
                    cells(
                        input: result.input(s), truth: result.truth(s), prediction: result.map(s),
                        size: result.imageSize,
                        inputTitle: "INPUT (EVEN)"))
            })
    }

    /// The input (grey), the truth (real scans have none) and the prediction, the last two on one
    /// colour scale from 0.
    static func cells(input: [Float], truth: [Float]?, prediction: [Float], size: Int, inputTitle: String) -> [RGBImage]
    {
        let top = max(truth?.max() ?? 0, prediction.max() ?? 1, 1e-6)
        return [panel(input, size, inputTitle, .grey)]
            + (truth.map { [panel($0, size, "TRUTH", .viridis, range: (0, top))] } ?? [])
            + [panel(prediction, size, "PREDICTION", .viridis, range: (0, top))]
    }

    static func panel(
        _ v: [Float], _ size: Int, _ title: String, _ map: ColourMap, range: (Float, Float)? = nil
    ) -> RGBImage {
        ImagePanel.render(
            v, size: size, title: title.uppercased(), colourMap: map, range: range, zoom: max(1, 128 / size))
    }
}
