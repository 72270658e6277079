"""Writes the NIfTI fixtures of SPIOImageIOTests with nibabel, and the values nibabel reads back.

Run from this folder: python3 make_fixtures.py (nibabel 5.x, numpy). Each volume is 5 x 4 x 3,
values chosen so that every voxel differs; expected.json holds nibabel's get_fdata() values in
file order (x fastest), which the Swift reader must reproduce.
"""
import json
import numpy as np
import nibabel as nib

shape = (5, 4, 3)
base = np.arange(np.prod(shape)).reshape(shape, order="F")
expected = {}

def save(name, data, dtype, slope=None, inter=None, big_endian=False, gz=False):
    img = nib.Nifti1Image(data.astype(dtype), affine=np.diag([0.5, 0.75, 1.25, 1.0]))
    if slope is not None:
        img.header.set_slope_inter(slope, inter)
    if big_endian:
        img = nib.Nifti1Image(data.astype(np.dtype(dtype).newbyteorder(">")), img.affine,
                              img.header.as_byteswapped(">"))
        if slope is not None:
            img.header.set_slope_inter(slope, inter)
    path = name + (".nii.gz" if gz else ".nii")
    nib.save(img, path)
    back = nib.load(path)
    expected[path] = {"shape": list(back.shape), "values": back.get_fdata().flatten(order="F").tolist(),
                      "datatype": int(back.header["datatype"]),
                      "pixdim": [float(v) for v in back.header["pixdim"][1:4]]}

save("uint8", base * 2, np.uint8)
save("int16_scaled", base - 20, np.int16, slope=0.5, inter=3.0)
save("float32", base * 0.25 - 4.5, np.float32)
save("float32_gz", np.sin(base).astype(np.float32), np.float32, gz=True)
save("int16_bigendian", base * 7 - 100, np.int16, big_endian=True)
save("float64", base / 3.0, np.float64)
save("int32", base * 1000 - 30000, np.int32)

with open("expected.json", "w") as f:
    json.dump(expected, f, indent=1)
print("\n".join(f"{k}: datatype {v['datatype']}" for k, v in expected.items()))
