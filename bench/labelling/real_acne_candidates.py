"""Step 1 of the real-acne labels (bench/README.md): numbered candidate lesions per photo.

Writes /tmp/s13acne/cands.json and numbered overlays /tmp/s13acne/sheet_NN.png (4 photos each) that
were reviewed by eye. Run once by hand; not part of the bench or the tests.
"""
import json, glob, hashlib, sys
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage as ndi
from skimage.color import rgb2lab
def bg(x, m, s):
    num = ndi.gaussian_filter(x*m, s); den = ndi.gaussian_filter(m.astype(float), s)
    return num/np.maximum(den,1e-3)
out={}
for f in sorted(glob.glob('../shared/real-acne/*.jpg')):
    rgb=np.asarray(Image.open(f).convert('RGB')); lab=rgb2lab(rgb); L,a,b=lab[...,0],lab[...,1],lab[...,2]
    hue=np.degrees(np.arctan2(b,a)); skin=(L>12)&(np.hypot(a,b)>5)&(hue>5)&(hue<95)
    skin=ndi.binary_opening(skin,iterations=2)
    ra=a-bg(a,skin,9); rL=L-bg(L,skin,9); rb=b-bg(b,skin,9)
    edge=ndi.binary_dilation(~skin,iterations=5)
    ras=ndi.gaussian_filter(ra,1.0); rLs=ndi.gaussian_filter(rL,0.8)
    cands=[]
    red=(ras>3.2)&skin
    lab_,n=ndi.label(red)
    for i,sl in enumerate(ndi.find_objects(lab_),1):
        comp=lab_[sl]==i; area=comp.sum()
        if area<8 or area>900: continue
        if (edge[sl]&comp).mean()>0.3: continue
        hh,ww=sl[0].stop-sl[0].start,sl[1].stop-sl[1].start
        if max(hh,ww)>3.5*min(hh,ww)+2: continue
        peak=ras[sl][comp].max()
        y0,y1,x0,x1=sl[0].start,sl[0].stop,sl[1].start,sl[1].stop
        kind='papule'
        if area>500: kind='nodule'
        core=comp&(ras[sl]>peak*0.5)
        if (rLs[sl][comp].max()>4 and rb[sl][comp].max()>2): kind='pustule'
        if peak<5.5 and area>60: kind='red_mark'
        cands.append(dict(box=[int(x0),int(y0),int(x1),int(y1)],kind=kind,score=float(peak*np.sqrt(area))))
    dark=(rLs<-9)&skin&(ras<3)
    lab_,n=ndi.label(dark)
    for i,sl in enumerate(ndi.find_objects(lab_),1):
        comp=lab_[sl]==i; area=comp.sum()
        if area<3 or area>150: continue
        if (edge[sl]&comp).any(): continue
        y0,y1,x0,x1=sl[0].start,sl[0].stop,sl[1].start,sl[1].stop
        hgt,wid=y1-y0,x1-x0
        if max(hgt,wid)>3*min(hgt,wid)+2: continue  # lines, hairs, wrinkles
        kind='blackhead' if area<40 else 'brown_mark'
        cands.append(dict(box=[int(x0),int(y0),int(x1),int(y1)],kind=kind,score=float(-rLs[sl][comp].min()*np.sqrt(area))))
    cands.sort(key=lambda c:-c['score']); cands=cands[:40]
    name=f.split('/')[-1]
    out[name]=dict(sha256=hashlib.sha256(open(f,'rb').read()).hexdigest(), cands=cands)
json.dump(out,open('/tmp/s13acne/cands.json','w'))
COL={'papule':(255,255,0),'pustule':(0,255,255),'nodule':(255,128,0),'red_mark':(255,0,255),'blackhead':(0,255,0),'brown_mark':(80,160,255),'whitehead':(255,255,255)}
names=sorted(out)
for s in range(0,len(names),4):
    sheet=Image.new('RGB',(1024,1024))
    for j,name in enumerate(names[s:s+4]):
        im=Image.open('../shared/real-acne/'+name).convert('RGB'); d=ImageDraw.Draw(im)
        for k,c in enumerate(out[name]['cands']):
            x0,y0,x1,y1=c['box']; d.rectangle([x0-2,y0-2,x1+1,y1+1],outline=COL[c['kind']])
            d.text((x1+2,y0-4),str(k),fill=COL[c['kind']])
        d.text((4,4),name,fill=(255,255,255))
        sheet.paste(im,((j%2)*512,(j//2)*512))
    sheet.save(f'/tmp/s13acne/sheet_{s//4:02d}.png')
print(sum(len(v['cands']) for v in out.values()))
