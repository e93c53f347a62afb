// ECharts, only the parts the dashboards draw (tree-shaken; loaded with the dashboard page only).
import { use } from 'echarts/core'
import { loadAnhuiGeo } from './anhuiMap'
import { CanvasRenderer } from 'echarts/renderers'
import { BarChart, LineChart, MapChart } from 'echarts/charts'
import { GridComponent, LegendComponent, TitleComponent, TooltipComponent, VisualMapComponent } from 'echarts/components'

use([CanvasRenderer, BarChart, LineChart, MapChart, GridComponent, LegendComponent, TitleComponent, TooltipComponent, VisualMapComponent])

/** Register the Anhui county polygons once; resolves to county code -> name. */
export function loadAnhuiMap(): Promise<Map<string, string>> {
  return loadAnhuiGeo().then((geo) => new Map(geo.features.map((f) => [f.properties.code, f.properties.name])))
}
