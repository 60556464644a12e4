"""Step 3: bench/real_acne_labels.json from the candidates and the review (run from the repo root)."""
import json, sys
sys.path.insert(0, 'bench/labelling'); from real_acne_review import D
c = json.load(open('/tmp/s13acne/cands.json'))
def inside(box, regions):
    x0, y0, x1, y1 = box; cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return any(a <= cx < b and c_ <= cy < d for a, c_, b, d in regions)
photos = {}
for name in sorted(c):
    key = name[:2]
    if key not in D: continue
    d = D[key]; cands = c[name]['cands']; keep = []
    for i, cand in enumerate(cands):
        ok = True
        if 'accept' in d: ok = i in d['accept']
        if 'reject' in d and i in d['reject']: ok = False
        if 'accept_kinds' in d: ok = cand['kind'] in d['accept_kinds']
        if 'accept_region' in d: ok = inside(cand['box'], d['accept_region']) and i not in d.get('reject', [])
        if 'reject_region' in d and inside(cand['box'], d['reject_region']): ok = False
        if ok:
            kind = d.get('kind_map', {}).get(cand['kind'], cand['kind'])
            keep.append({'box': cand['box'], 'kind': kind, 'by': 'candidate'})
    for x0, y0, x1, y1, kind in d.get('add', []):
        keep.append({'box': [max(0, x0), max(0, y0), min(512, x1), min(512, y1)], 'kind': kind, 'by': 'hand'})
    photos[name] = {'sha256': c[name]['sha256'], 'size': [512, 512], 'lesions': keep}
out = {'about': 'Visible lesions in ../shared/real-acne (files not copied here), keyed by file name and sha256. '
        'box = [x0, y0, x1, y1] px, x1/y1 exclusive. See bench/README.md, section Real-acne labels, for how they were made.',
       'kinds': ['papule', 'pustule', 'nodule', 'blackhead', 'whitehead', 'red_mark', 'brown_mark'],
       'photos': photos}
json.dump(out, open('bench/real_acne_labels.json', 'w'), indent=0)
print(len(photos), sum(len(p['lesions']) for p in photos.values()))
from collections import Counter; print(Counter(l['kind'] for p in photos.values() for l in p['lesions']))
