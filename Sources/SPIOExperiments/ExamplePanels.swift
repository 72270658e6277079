import SPIOImageIO
import SPIOPlots
import SPIOTraining

/// Input channel 0, truth and prediction of test images as labelled panels with colour bars:
/// rows for an evaluation's `examples.png`, columns for a report's strips. Truth and prediction
/// share one concentration scale from 0.
enum ExamplePanels {
    static func grid(_ result: EvaluationResult, count: Int) -> ImageGrid {
        ImageGrid(
            rows: (0..<count).map { s in
                cells(
                    input: result.input(s), truth: result.truth(s), prediction: result.map(s), size: result.imageSize,
                    inputTitle: "input")
            })
    }

    /// The input (grey), the truth (real scans have none) and the prediction.
    static func cells(
        input: [Float], truth: [Float]?, prediction: [Float], size: Int, inputTitle: String, inputUnit: String = "a.u."
    ) -> [ImageGrid.Panel] {
        let top = max(truth?.max() ?? 0, prediction.max() ?? 1, 1e-6)
        return [ImageGrid.Panel(input, size: size, title: inputTitle, unit: inputUnit)]
            + (truth.map { [concentration($0, size: size, title: "truth", top: top)] } ?? [])
            + [concentration(prediction, size: size, title: "prediction", top: top)]
    }

    /// A concentration map on the scale [0, top].
    static func concentration(_ v: [Float], size: Int, title: String, top: Float? = nil) -> ImageGrid.Panel {
        ImageGrid.Panel(
            v, size: size, title: title, colourMap: .viridis, range: top.map { (0, $0) }, unit: "µg/mm^3")
    }
}
